-- Read-only links that open the market hall's board (every payment, by stall, no payer).
-- Only the SHA-256 of a link's token is kept; a revoked link opens nothing.
CREATE TABLE market_board_links (
    id BLOB PRIMARY KEY NOT NULL,
    label TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_by_username TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
