.PHONY: run test infra-up infra-down bench lint

# The main job (embedded default unless PostgreSQL/Kafka settings are given).
run:
	scripts/run.sh

# The whole test suite from a fresh machine.
test:
	scripts/test.sh

infra-up:
	scripts/infra.sh up

infra-down:
	scripts/infra.sh down
