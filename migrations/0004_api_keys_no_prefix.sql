-- Only the SHA-256 of a key is stored (API.md): the first characters of
-- each key, kept until now for people to tell keys apart, go. key_id tells
-- them apart.
ALTER TABLE api_keys DROP COLUMN prefix;
