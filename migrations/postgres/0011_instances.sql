-- Several calltrail instances on one database (PostgreSQL): who is running, and which instance
-- holds which background work.

-- Every running server, refreshed every few seconds; `files` is where its recordings and export
-- files live (`disk` or the object storage's URL), so that instances on local disks refuse to
-- share one database.
CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    files TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    seen_at BIGINT NOT NULL
);

-- A lease on a piece of background work (`export:17`, `qm-export:4`, `retention`): the owner
-- renews it while working; once `until` has passed, any instance may take the work over.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    until BIGINT NOT NULL
);
