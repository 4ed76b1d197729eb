# The two commands a newcomer needs (see README.md).
.PHONY: up down test

## up: install/find PostgreSQL and NATS, build, migrate, seed the demo tenant, run every target
up:
	@bash deploy/local/up.sh

## down: stop what `make up` or `make test` started
down:
	@bash deploy/local/down.sh

## test: the whole suite against real PostgreSQL and NATS
test:
	@bash deploy/local/test.sh
