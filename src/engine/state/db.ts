// krd's state: one SQLite database (node:sqlite, WAL) under the data root. Every change is a
// transaction committed before the API answers, so a kill -9 at any moment loses nothing that
// was acknowledged. The schema is versioned with PRAGMA user_version; MIGRATIONS[i] takes the
// database from version i to i+1 and runs in one transaction with the version bump.
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { withContext } from '../../util/errors.ts';

const MIGRATIONS: string[] = [
  // 1: images, plus the tables containers, volumes, networks and execs will fill.
  `
  CREATE TABLE images (
    id              TEXT PRIMARY KEY,          -- config digest: docker's image ID
    manifest_digest TEXT NOT NULL,             -- the manifest in the blob store (what save/push read)
    size            INTEGER NOT NULL,          -- bytes of the layers as stored
    created         TEXT,                      -- the config's "created"
    added           INTEGER NOT NULL,          -- unix ms when krd got it
    source          TEXT NOT NULL              -- pull | load | bali
  );
  CREATE TABLE image_tags (
    ref       TEXT PRIMARY KEY,                -- canonical "registry/repo:tag"
    image_id  TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    tagged    INTEGER NOT NULL
  );
  CREATE INDEX image_tags_image ON image_tags(image_id);
  CREATE TABLE image_digests (
    ref       TEXT PRIMARY KEY,                -- canonical "registry/repo@sha256:…" (RepoDigests)
    image_id  TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
  );
  CREATE INDEX image_digests_image ON image_digests(image_id);
  CREATE TABLE containers (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    image_id    TEXT NOT NULL,
    image_ref   TEXT NOT NULL,                 -- what the user asked for ("busybox:latest")
    state       TEXT NOT NULL,                 -- created | running | paused | restarting | exited | dead
    created     INTEGER NOT NULL,
    started     INTEGER,
    finished    INTEGER,
    exit_code   INTEGER,
    pid         INTEGER,
    runtime     TEXT NOT NULL,                 -- ns | vm
    config      TEXT NOT NULL,                 -- JSON: docker's Config
    host_config TEXT NOT NULL,                 -- JSON: docker's HostConfig
    network     TEXT NOT NULL DEFAULT '{}'     -- JSON: NetworkSettings
  );
  CREATE TABLE volumes (
    name        TEXT PRIMARY KEY,
    driver      TEXT NOT NULL,
    mountpoint  TEXT NOT NULL,
    created     INTEGER NOT NULL,
    labels      TEXT NOT NULL DEFAULT '{}',
    options     TEXT NOT NULL DEFAULT '{}'
  );
  CREATE TABLE networks (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    driver      TEXT NOT NULL,
    created     INTEGER NOT NULL,
    ipam        TEXT NOT NULL DEFAULT '{}',
    labels      TEXT NOT NULL DEFAULT '{}',
    options     TEXT NOT NULL DEFAULT '{}'
  );
  CREATE TABLE execs (
    id           TEXT PRIMARY KEY,
    container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    config       TEXT NOT NULL,                -- JSON: docker's ExecConfig
    running      INTEGER NOT NULL DEFAULT 0,
    exit_code    INTEGER,
    pid          INTEGER
  );
  `,
  // 2: State.Health of containers with a healthcheck (JSON: Status, FailingStreak, Log), NULL without.
  `ALTER TABLE containers ADD COLUMN health TEXT;`,
  // 3: restart policies — restarts so far, and whether a manual stop turned them off.
  `
  ALTER TABLE containers ADD COLUMN restart_count INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE containers ADD COLUMN manually_stopped INTEGER NOT NULL DEFAULT 0;
  `,
  // 4: networks — endpoints (a container's address on a network) and per-container networking
  // (its namespace file, published ports), plus the network flags docker reports.
  `
  ALTER TABLE networks ADD COLUMN internal INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE networks ADD COLUMN attachable INTEGER NOT NULL DEFAULT 0;
  CREATE TABLE endpoints (
    id           TEXT PRIMARY KEY,
    network_id   TEXT NOT NULL REFERENCES networks(id),
    container_id TEXT NOT NULL,
    ip           TEXT NOT NULL,
    aliases      TEXT NOT NULL DEFAULT '[]',   -- JSON: --network-alias / connect --alias
    ifname       TEXT NOT NULL,                -- inside the container: eth0, eth1…
    host_ifname  TEXT NOT NULL,                -- the veth end on the bridge
    ipam_config  TEXT NOT NULL DEFAULT '{}',   -- JSON: what was asked (IPAMConfig)
    created      INTEGER NOT NULL,
    UNIQUE (network_id, container_id),
    UNIQUE (network_id, ip)
  );
  CREATE INDEX endpoints_container ON endpoints(container_id);
  CREATE TABLE container_networking (
    container_id TEXT PRIMARY KEY,
    mode         TEXT NOT NULL,                -- bridge | host | none | container:<id>
    netns        TEXT,                         -- the namespace file krd made (bridge mode)
    ports        TEXT NOT NULL DEFAULT '{}'    -- JSON: NetworkSettings.Ports with the bound host ports
  );
  `,
  // 5: the mounts of each container (volumes, binds, tmpfs) as docker's inspect lists them; a
  // volume is in use while a row names it. Rows go with their container.
  `
  CREATE TABLE container_mounts (
    container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,             -- the order they are mounted in
    type         TEXT NOT NULL,                -- volume | bind | tmpfs
    name         TEXT,                         -- the volume's name (type volume)
    source       TEXT NOT NULL,
    destination  TEXT NOT NULL,
    driver       TEXT,
    mode         TEXT NOT NULL,
    rw           INTEGER NOT NULL,
    propagation  TEXT NOT NULL,
    PRIMARY KEY (container_id, destination)
  );
  CREATE INDEX container_mounts_volume ON container_mounts(name);
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Every prepare() of the same SQL returns the one compiled statement: callers prepare where they
 * query (readable), and compiling the SQL each time cost ~25 µs a query, a dozen or more of them
 * on the path of a `docker run`. A statement is reset by each run/get/all, so sharing is safe.
 */
function cacheStatements(db: DatabaseSync): void {
  const compile = db.prepare.bind(db);
  const compiled = new Map<string, StatementSync>();
  db.prepare = (sql: string) => {
    let st = compiled.get(sql);
    if (!st) compiled.set(sql, (st = compile(sql)));
    return st;
  };
}

export class StateDb {
  readonly db: DatabaseSync;
  readonly path: string;

  private constructor(db: DatabaseSync, path: string) {
    this.db = db;
    this.path = path;
  }

  /** Opens (creating and migrating if needed) the database at path. */
  static open(path: string): StateDb {
    let db: DatabaseSync;
    try {
      mkdirSync(dirname(path), { recursive: true });
      db = new DatabaseSync(path);
      // synchronous = NORMAL: in WAL mode a commit is in the WAL (the OS's page cache) before it
      // returns, so a kill -9 of krd loses nothing; only a machine crash can roll back the last
      // commits — which also ends every container they describe. FULL adds an fsync to each
      // commit, ~1 ms apiece on this disk, four of them per `docker run --rm`.
      db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;');
    } catch (err) {
      throw withContext(err, `cannot open state database ${path}`);
    }
    cacheStatements(db);
    const state = new StateDb(db, path);
    state.migrate();
    return state;
  }

  get version(): number {
    return Number((this.db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version);
  }

  private migrate(): void {
    const from = this.version;
    if (from > SCHEMA_VERSION) {
      throw withContext(new Error(`schema version ${from} is newer than this krd knows (${SCHEMA_VERSION})`), `state database ${this.path}`);
    }
    for (let v = from; v < SCHEMA_VERSION; v++) {
      this.transaction(() => {
        this.db.exec(MIGRATIONS[v]);
        this.db.exec(`PRAGMA user_version = ${v + 1}`);
      });
    }
  }

  /** Runs fn inside BEGIN IMMEDIATE … COMMIT (ROLLBACK when it throws). */
  transaction<T>(fn: () => T): T {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const out = fn();
      this.db.exec('COMMIT');
      return out;
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    }
  }

  /** Rows counted per container state (for /info). */
  containerCounts(): { total: number; running: number; paused: number; stopped: number } {
    const rows = this.db.prepare('SELECT state, COUNT(*) AS n FROM containers GROUP BY state').all() as { state: string; n: number }[];
    let total = 0;
    let running = 0;
    let paused = 0;
    for (const r of rows) {
      total += Number(r.n);
      if (r.state === 'running' || r.state === 'restarting') running += Number(r.n);
      if (r.state === 'paused') paused += Number(r.n);
    }
    return { total, running, paused, stopped: total - running - paused };
  }

  close(): void {
    this.db.close();
  }
}
