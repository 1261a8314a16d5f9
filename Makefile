# Shortcuts; the scripts under scripts/ do the work and install what they need.
.PHONY: bench-query run test bench build proto

run:
	scripts/run.sh

test:
	scripts/test.sh

build:
	swift build

bench:
	scripts/install-deps.sh
	swift build -c release
	python3 bench/run.py

proto:
	scripts/generate-proto.sh

# Query latency over 100k traces on SQLite and PostgreSQL, and ack-to-visible.
bench-query:
	swift build -c release --product tracefold
	swift build -c release --product tracefold-loadgen
	python3 bench/query.py
