-- The image an `os-volume_upload_image` is making, set in the same UPDATE that moves the volume
-- to `uploading` (before the image record exists) and cleared when the volume goes back. A
-- crash between the image record and the enqueue of its job leaves a volume `uploading` with
-- no job: start-up recovery deletes this image if it is still `queued`, then puts the volume
-- back. NULL when no upload runs (and for uploads that started before this column existed).
ALTER TABLE volumes ADD COLUMN upload_image_id TEXT;
