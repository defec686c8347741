-- Feed secrets are sealed at rest (XChaCha20-Poly1305, src/domain/sealing.rs): `secrets` is
-- a JSON array of base64 nonce and ciphertext, sealed under the key `secrets_key_id` names.
-- Rows written before have no key id and readable secrets; the service seals them when it
-- starts or on `market-ledger migrate`, since the key is not in the database.
-- Same names as migrations/sqlite/0009_sealed_feed_secrets.sql.
ALTER TABLE bank_feeds ADD COLUMN secrets_key_id TEXT;
