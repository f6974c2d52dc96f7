//! glimpse-formats against real inputs, in one test binary: the hostile-image corpus, qcow2
//! overlays and the confined qemu-img runner (real qemu-img/qemu-io), and randomized
//! inspector streams.

mod corpus;
mod overlay;
mod qemu;
mod random;
