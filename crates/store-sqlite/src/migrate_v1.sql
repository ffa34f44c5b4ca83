-- Upgrades a store-sqlite database from schema version 1 to 2, in one transaction: every
-- table whose records the stores read back gets its crc column. Rows written under
-- version 1 keep crc NULL and are read unverified; every row written from now on carries
-- its checksum.
ALTER TABLE engine_kv ADD COLUMN crc INTEGER CHECK (crc BETWEEN 0 AND 4294967295);
ALTER TABLE engine_batch_log ADD COLUMN crc INTEGER CHECK (crc BETWEEN 0 AND 4294967295);
ALTER TABLE state_entries ADD COLUMN crc INTEGER CHECK (crc BETWEEN 0 AND 4294967295);
ALTER TABLE ledger_postings ADD COLUMN crc INTEGER CHECK (crc BETWEEN 0 AND 4294967295);
ALTER TABLE side_effect_output_payloads ADD COLUMN crc INTEGER CHECK (crc BETWEEN 0 AND 4294967295);
ALTER TABLE side_effect_call_outputs ADD COLUMN crc INTEGER CHECK (crc BETWEEN 0 AND 4294967295);
ALTER TABLE side_effect_inbound ADD COLUMN crc INTEGER CHECK (crc BETWEEN 0 AND 4294967295);
ALTER TABLE segment_entries ADD COLUMN crc INTEGER CHECK (crc BETWEEN 0 AND 4294967295);
ALTER TABLE segment_traces ADD COLUMN crc INTEGER CHECK (crc BETWEEN 0 AND 4294967295);
UPDATE schema_version SET version = 2 WHERE id = 1;
