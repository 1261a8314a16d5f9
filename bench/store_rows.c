// SQLite alone, writing the bench load's rows two ways (issue 18's store
// step): how much of the store's per-span cost a layout with fewer rows
// and b-tree entries a span would save, measured without the collector's
// Swift side and its noise.
//
//   today    what SQLiteStore writes per commit: per span an observation
//            row (a rowid table, 18 columns, two blobs) with its three
//            indexes, upserted; per trace its row (six indexes, upserted)
//            and eight trace_metadata rows (a WITHOUT ROWID key and the
//            by-value index); then the exporter's marks on the trace rows
//   chunked  the same, except that a trace's new observations in a commit
//            are one row of `observation_chunks` (their index columns packed
//            in one blob, their records and span bytes in two), keyed by
//            (epoch, trace_id, chunk) and indexed by start time, with one
//            narrow WITHOUT ROWID entry per span (epoch, span_id, trace_id)
//            for a read by id
//   noObservations  traces, metadata and marks only: what both share
//   tracesOnly      trace rows and their marks, no metadata rows either
//   metadataRowid   today, with trace_metadata a rowid table that has only
//                   its by-value index (no key by trace)
//
// The load: 8 spans a trace, commits of 4,096 spans (the pipeline's group),
// random ids, times that go up, blobs of the sizes a bench store holds
// compressed (record 86, span 96, trace record 151 bytes), epochs of 16,384
// rows. 16 KiB pages, WAL, synchronous NORMAL, a 16 MiB cache, as the
// store's writer. Prints CPU microseconds a span (user and system, this
// process) and file bytes a span after a checkpoint.
//
//   cc -O2 -o /tmp/store_rows bench/store_rows.c -lsqlite3 && /tmp/store_rows [SPANS] [ROUNDS]
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SPANS_PER_TRACE 8
#define COMMIT 4096
#define EPOCH_ROWS 16384

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return rng;
}
static void fill(unsigned char *b, int n) { for (int i = 0; i < n; i++) b[i] = (unsigned char)next(); }

static double cpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void exec(sqlite3 *db, const char *sql) {
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) { fprintf(stderr, "%s\n%s\n", err, sql); exit(1); }
}

static sqlite3_stmt *prepare(sqlite3 *db, const char *sql) {
    sqlite3_stmt *s;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) { fprintf(stderr, "%s\n%s\n", sqlite3_errmsg(db), sql); exit(1); }
    return s;
}

static void step(sqlite3 *db, sqlite3_stmt *s) {
    if (sqlite3_step(s) != SQLITE_DONE) { fprintf(stderr, "%s\n", sqlite3_errmsg(db)); exit(1); }
    sqlite3_reset(s);
}

static const char *common =
    "CREATE TABLE traces (id INTEGER PRIMARY KEY AUTOINCREMENT, trace_id BLOB NOT NULL, revision INTEGER NOT NULL, exported_revision INTEGER NOT NULL DEFAULT 0,"
    " changed_at INTEGER NOT NULL, start_time INTEGER NOT NULL, record BLOB NOT NULL, name TEXT, user_id TEXT, session_id TEXT, version TEXT, release TEXT,"
    " environment TEXT, tags TEXT NOT NULL DEFAULT '[]', public INTEGER NOT NULL DEFAULT 0, entries TEXT NOT NULL DEFAULT '[]', last_seq INTEGER NOT NULL DEFAULT 0,"
    " latency REAL, total_cost REAL, generation INTEGER NOT NULL DEFAULT 0, epoch INTEGER NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX traces_by_key ON traces(epoch, trace_id);"
    "CREATE INDEX traces_by_start ON traces(start_time);"
    "CREATE INDEX traces_unexported ON traces(changed_at) WHERE revision > exported_revision;"
    "CREATE INDEX traces_by_user ON traces(user_id, start_time);"
    "CREATE INDEX traces_by_session ON traces(session_id, start_time);"
    "CREATE INDEX traces_by_name ON traces(name, start_time);"
    "CREATE TABLE trace_metadata (epoch INTEGER NOT NULL, trace_id BLOB NOT NULL, key TEXT NOT NULL, value TEXT, start_time INTEGER NOT NULL,"
    " PRIMARY KEY (epoch, trace_id, key)) WITHOUT ROWID;"
    "CREATE INDEX trace_metadata_by_value_start ON trace_metadata(key, value, start_time, trace_id);";

static const char *today =
    "CREATE TABLE observations (trace_id BLOB NOT NULL, span_id BLOB NOT NULL, revision INTEGER NOT NULL, trace_revision INTEGER NOT NULL DEFAULT 0,"
    " start_time INTEGER NOT NULL, type TEXT, name TEXT, level TEXT, version TEXT, parent_id TEXT, environment TEXT, model TEXT, latency REAL,"
    " input_tokens REAL, output_tokens REAL, total_tokens REAL, cost REAL, record TEXT NOT NULL, seq INTEGER, received_at INTEGER, body BLOB,"
    " epoch INTEGER NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX observations_by_trace ON observations(epoch, trace_id, span_id);"
    "CREATE INDEX observations_by_epoch_span ON observations(epoch, span_id);"
    "CREATE INDEX observations_by_start ON observations(start_time);";

static const char *chunked =
    "CREATE TABLE observation_chunks (epoch INTEGER NOT NULL, trace_id BLOB NOT NULL, chunk INTEGER NOT NULL, start_time INTEGER NOT NULL,"
    " trace_revision INTEGER NOT NULL, spans INTEGER NOT NULL, columns BLOB NOT NULL, records BLOB NOT NULL, bodies BLOB);"
    "CREATE UNIQUE INDEX observation_chunks_by_trace ON observation_chunks(epoch, trace_id, chunk);"
    "CREATE INDEX observation_chunks_by_start ON observation_chunks(start_time);"
    "CREATE TABLE observation_ids (epoch INTEGER NOT NULL, span_id BLOB NOT NULL, trace_id BLOB NOT NULL, PRIMARY KEY (epoch, span_id, trace_id)) WITHOUT ROWID;";

static const char *metadata_keys[8] = {"_user", "cached", "plan", "region", "resourceAttributes", "scope", "step", "tenant"};

struct result { double us_per_span; double bytes_per_span; };

// The layouts of the header comment.
enum layout { TODAY, CHUNKED, NO_OBSERVATIONS, TRACES_ONLY, METADATA_ROWID };

static struct result run(enum layout layout, int spans, const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/x.sqlite", dir);
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK) exit(1);
    exec(db, "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -16384;");
    exec(db, common);
    if (layout == METADATA_ROWID) exec(db, "DROP TABLE trace_metadata; CREATE TABLE trace_metadata (epoch INTEGER NOT NULL, trace_id BLOB NOT NULL, key TEXT NOT NULL, value TEXT,"
                               " start_time INTEGER NOT NULL); CREATE INDEX trace_metadata_by_value_start ON trace_metadata(key, value, start_time, trace_id);");
    if (layout == TODAY || layout == METADATA_ROWID) exec(db, today);
    if (layout == CHUNKED) exec(db, chunked);
    sqlite3_stmt *trace = prepare(db,
        "INSERT INTO traces (trace_id, revision, changed_at, start_time, record, name, user_id, session_id, version, release, environment, tags, public,"
        " last_seq, latency, total_cost, generation, epoch) VALUES (?,1,?,?,?,?,?,NULL,NULL,NULL,'bench','[]',0,?,0.04,0.0001,?,?)"
        " ON CONFLICT(epoch, trace_id) DO UPDATE SET revision = traces.revision + 1, changed_at = excluded.changed_at, record = excluded.record");
    sqlite3_stmt *meta = prepare(db, "INSERT INTO trace_metadata (trace_id, key, value, start_time, epoch) VALUES (?,?,?,?,?)");
    sqlite3_stmt *obs = (layout == TODAY || layout == METADATA_ROWID) ? prepare(db,
        "INSERT INTO observations (trace_id, span_id, revision, trace_revision, start_time, record, type, name, level, version, parent_id, environment, model,"
        " latency, input_tokens, output_tokens, total_tokens, cost, seq, received_at, body, epoch) VALUES (?,?,1,1,?,?,'SPAN',?,'DEFAULT',NULL,?,'bench',?,0.005,102,NULL,102,0.0000153,?,?,?,?)"
        " ON CONFLICT(epoch, trace_id, span_id) DO UPDATE SET revision = observations.revision + 1, record = excluded.record") : NULL;
    sqlite3_stmt *chunk = layout == CHUNKED ? prepare(db,
        "INSERT INTO observation_chunks (epoch, trace_id, chunk, start_time, trace_revision, spans, columns, records, bodies) VALUES (?,?,1,?,1,?,?,?,?)") : NULL;
    sqlite3_stmt *ids = layout == CHUNKED ? prepare(db, "INSERT INTO observation_ids (epoch, span_id, trace_id) VALUES (?,?,?)") : NULL;
    sqlite3_stmt *mark = prepare(db, "UPDATE traces SET exported_revision = revision WHERE epoch = ? AND trace_id = ?");
    sqlite3_stmt *begin = prepare(db, "BEGIN IMMEDIATE"), *commit = prepare(db, "COMMIT");

    unsigned char traceID[COMMIT / SPANS_PER_TRACE][16], span[8], record[86 * SPANS_PER_TRACE], body[96 * SPANS_PER_TRACE], trecord[151], columns[40 * SPANS_PER_TRACE];
    int64_t t = 1796614504235278928LL, rows = 0, epoch = 1;
    double start = cpu();
    for (int done = 0; done < spans; done += COMMIT) {
        if (rows >= EPOCH_ROWS) { epoch++; rows = 0; }
        rows += COMMIT;
        int traces = COMMIT / SPANS_PER_TRACE;
        step(db, begin);
        for (int k = 0; k < traces; k++) {
            fill(traceID[k], 16);
            fill(trecord, sizeof trecord);
            int64_t ts = t + (int64_t)(done + k * SPANS_PER_TRACE) * 1000;
            sqlite3_bind_blob(trace, 1, traceID[k], 16, SQLITE_STATIC);
            sqlite3_bind_int64(trace, 2, ts);
            sqlite3_bind_int64(trace, 3, ts);
            sqlite3_bind_blob(trace, 4, trecord, sizeof trecord, SQLITE_STATIC);
            sqlite3_bind_text(trace, 5, "handle-request", -1, SQLITE_STATIC);
            char user[16];
            snprintf(user, sizeof user, "user-%d", (int)(next() % 64));
            sqlite3_bind_text(trace, 6, user, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(trace, 7, SPANS_PER_TRACE);
            sqlite3_bind_int64(trace, 8, (int64_t)(next() >> 2));
            sqlite3_bind_int64(trace, 9, epoch);
            step(db, trace);
            for (int m = 0; m < (layout == TRACES_ONLY ? 0 : 8); m++) {
                char value[32];
                snprintf(value, sizeof value, m == 0 ? "\"user-%d\"" : m == 7 ? "\"acme-%d\"" : "\"v%d\"", m == 0 ? (int)(next() % 64) : m == 7 ? (int)(next() % 7) : m);
                sqlite3_bind_blob(meta, 1, traceID[k], 16, SQLITE_STATIC);
                sqlite3_bind_text(meta, 2, metadata_keys[m], -1, SQLITE_STATIC);
                sqlite3_bind_text(meta, 3, value, -1, SQLITE_TRANSIENT);
                sqlite3_bind_int64(meta, 4, ts);
                sqlite3_bind_int64(meta, 5, epoch);
                step(db, meta);
            }
            fill(record, sizeof record);
            fill(body, sizeof body);
            for (int i = 0; i < SPANS_PER_TRACE; i++) {
                fill(span, 8);
                int64_t st = ts + i * 1000;
                if (layout == TODAY || layout == METADATA_ROWID) {
                    char name[16];
                    snprintf(name, sizeof name, "step-%d", i);
                    sqlite3_bind_blob(obs, 1, traceID[k], 16, SQLITE_STATIC);
                    sqlite3_bind_blob(obs, 2, span, 8, SQLITE_STATIC);
                    sqlite3_bind_int64(obs, 3, st);
                    sqlite3_bind_blob(obs, 4, record + 86 * i, 86, SQLITE_STATIC);
                    sqlite3_bind_text(obs, 5, name, -1, SQLITE_TRANSIENT);
                    sqlite3_bind_text(obs, 6, i ? "932891d0f5c09b17" : NULL, -1, SQLITE_STATIC);
                    sqlite3_bind_text(obs, 7, "gpt-4o-mini", -1, SQLITE_STATIC);
                    sqlite3_bind_int64(obs, 8, done + k * SPANS_PER_TRACE + i);
                    sqlite3_bind_int64(obs, 9, st);
                    sqlite3_bind_blob(obs, 10, body + 96 * i, 96, SQLITE_STATIC);
                    sqlite3_bind_int64(obs, 11, epoch);
                    step(db, obs);
                } else if (layout == CHUNKED) {
                    sqlite3_bind_int64(ids, 1, epoch);
                    sqlite3_bind_blob(ids, 2, span, 8, SQLITE_STATIC);
                    sqlite3_bind_blob(ids, 3, traceID[k], 16, SQLITE_STATIC);
                    step(db, ids);
                }
            }
            if (layout == CHUNKED) {
                fill(columns, sizeof columns);
                sqlite3_bind_int64(chunk, 1, epoch);
                sqlite3_bind_blob(chunk, 2, traceID[k], 16, SQLITE_STATIC);
                sqlite3_bind_int64(chunk, 3, ts);
                sqlite3_bind_int64(chunk, 4, SPANS_PER_TRACE);
                sqlite3_bind_blob(chunk, 5, columns, sizeof columns, SQLITE_STATIC);
                sqlite3_bind_blob(chunk, 6, record, sizeof record, SQLITE_STATIC);
                sqlite3_bind_blob(chunk, 7, body, sizeof body, SQLITE_STATIC);
                step(db, chunk);
            }
        }
        step(db, commit);
        // The exporter's marks, in a transaction of their own.
        step(db, begin);
        for (int k = 0; k < traces; k++) {
            sqlite3_bind_int64(mark, 1, epoch);
            sqlite3_bind_blob(mark, 2, traceID[k], 16, SQLITE_STATIC);
            step(db, mark);
        }
        step(db, commit);
    }
    double used = cpu() - start;
    exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    sqlite3_stmt *all[] = {trace, meta, obs, chunk, ids, mark, begin, commit};
    for (unsigned i = 0; i < sizeof all / sizeof *all; i++) if (all[i]) sqlite3_finalize(all[i]);
    sqlite3_close(db);
    struct stat st;
    stat(path, &st);
    struct result r = {used / spans * 1e6, (double)st.st_size / spans};
    unlink(path);
    char wal[520];
    snprintf(wal, sizeof wal, "%s-wal", path);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", path);
    unlink(wal);
    return r;
}

int main(int argc, char **argv) {
    int spans = argc > 1 ? atoi(argv[1]) : 409600;
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    char dir[] = "/tmp/tf-store-rows-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    printf("{\"spans\": %d, \"rounds\": [\n", spans);
    for (int r = 0; r < rounds; r++) {
        struct result a = run(TODAY, spans, dir), b = run(CHUNKED, spans, dir), c = run(NO_OBSERVATIONS, spans, dir), d = run(TRACES_ONLY, spans, dir),
                      e = run(METADATA_ROWID, spans, dir);
        printf("  {\"today\": {\"usPerSpan\": %.2f, \"bytesPerSpan\": %.0f}, \"chunked\": {\"usPerSpan\": %.2f, \"bytesPerSpan\": %.0f},"
               " \"noObservations\": {\"usPerSpan\": %.2f, \"bytesPerSpan\": %.0f}, \"tracesOnly\": {\"usPerSpan\": %.2f, \"bytesPerSpan\": %.0f},"
               " \"metadataRowid\": {\"usPerSpan\": %.2f, \"bytesPerSpan\": %.0f}}%s\n",
               a.us_per_span, a.bytes_per_span, b.us_per_span, b.bytes_per_span, c.us_per_span, c.bytes_per_span, d.us_per_span, d.bytes_per_span, e.us_per_span, e.bytes_per_span, r + 1 < rounds ? "," : "");
        fflush(stdout);
    }
    printf("]}\n");
    rmdir(dir);
    return 0;
}
