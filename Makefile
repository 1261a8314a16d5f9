# Shortcuts; the scripts under scripts/ do the work and install what they need.
.PHONY: run test bench build proto

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
