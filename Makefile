# Shortcuts; the scripts under scripts/ do the work and install what they need.
.PHONY: bench-query bench-peers bench-huge bench-explorer run test bench build proto soak fuzz

run:
	scripts/run.sh

test:
	scripts/test.sh

build:
	swift build

# SPEC §10.2 for SQLite and PostgreSQL, fsync and none, with the per-stage
# profile, the overload row, the decode limit, the query p99 over 100k
# traces and the scaling curve; one table, JSON in bench/results/.
bench:
	scripts/install-deps.sh --bench
	swift build -c release --product tracefold
	swift build -c release --product tracefold-loadgen
	python3 bench/run.py
	python3 bench/huge_span.py
	scripts/install-deps.sh
	scripts/python-venv.sh
	.venv/bin/python bench/explorer.py

# One huge request (10^6 attributes, 10^6 events, a 10 MB value) against a
# client sending small batches: that client's ack p99 alone and meanwhile.
bench-huge:
	swift build -c release --product tracefold
	python3 bench/huge_span.py

# The same load to tracefold, MLflow 3.17.2 and Arize Phoenix 20.26.1 (from
# PyPI into .venv-peers), on loopback SQLite; prints the ratios.
bench-peers:
	scripts/install-deps.sh
	swift build -c release --product tracefold
	swift build -c release --product tracefold-loadgen
	python3 bench/peers.py

# The explorer's time to first render of a 2,000-observation trace in
# headless Chromium, against a 10-observation trace in the same run.
bench-explorer:
	scripts/install-deps.sh
	scripts/python-venv.sh
	swift build -c release --product tracefold
	.venv/bin/python bench/explorer.py

proto:
	scripts/generate-proto.sh

# Query latency over 100k traces on SQLite and PostgreSQL, and ack-to-visible.
bench-query:
	swift build -c release --product tracefold
	swift build -c release --product tracefold-loadgen
	python3 bench/query.py

# The crash-safety soak in full: 20 rounds of load, kill -9 and restart; every
# span that got a 200 must be in the records, the export without duplicates.
soak:
	scripts/install-deps.sh
	scripts/python-venv.sh
	swift build --product tracefold
	swift build --product tracefold-loadgen
	TRACEFOLD_SOAK_ROUNDS=20 TRACEFOLD_BIN=$(CURDIR)/.build/debug/tracefold TRACEFOLD_LOADGEN=$(CURDIR)/.build/debug/tracefold-loadgen .venv/bin/python -m pytest -q -s tests/python/test_durability.py -k kill_9

# libFuzzer with address sanitizer: protobuf, OTLP/JSON, gzip and metadata,
# 10 minutes each (scripts/fuzz.sh; the test command runs 10 s each).
fuzz:
	scripts/fuzz.sh 600
