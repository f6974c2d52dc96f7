//! JSON as Python's `json.dumps` writes it with its default separators (`", "`, `": "`), which
//! is what Glance, Cinder and the seeds' cloud answer: [`dumps`] keeps UTF-8 as it is (Glance's
//! output), [`dumps_ascii`] escapes every non-ASCII character as `\uXXXX` (`ensure_ascii`, as
//! Cinder calls it).

use serde::Serialize;

struct PyFormatter {
    ensure_ascii: bool,
}

impl serde_json::ser::Formatter for PyFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        if !self.ensure_ascii {
            return w.write_all(fragment.as_bytes());
        }
        for c in fragment.chars() {
            if c.is_ascii() && c != '\u{7f}' {
                w.write_all(&[c as u8])?;
            } else {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    write!(w, "\\u{u:04x}")?;
                }
            }
        }
        Ok(())
    }
}

fn write<T: Serialize>(v: &T, ensure_ascii: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PyFormatter { ensure_ascii });
    // Serializing our own views into memory cannot fail.
    let _ = v.serialize(&mut ser);
    out
}

/// `json.dumps(v, ensure_ascii=False)`.
pub fn dumps<T: Serialize>(v: &T) -> Vec<u8> {
    write(v, false)
}

/// `json.dumps(v)`: non-ASCII characters as `\uXXXX` escapes.
pub fn dumps_ascii<T: Serialize>(v: &T) -> Vec<u8> {
    write(v, true)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn separators_and_ascii_escapes_are_pythons() {
        let v = json!({"a": [1, 2], "b": "é😀\u{7f}"});
        assert_eq!(
            String::from_utf8(super::dumps(&v)).unwrap(),
            "{\"a\": [1, 2], \"b\": \"é😀\u{7f}\"}"
        );
        assert_eq!(
            String::from_utf8(super::dumps_ascii(&v)).unwrap(),
            "{\"a\": [1, 2], \"b\": \"\\u00e9\\ud83d\\ude00\\u007f\"}"
        );
    }
}
