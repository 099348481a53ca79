# vote_guard: PGXS build
MODULE_big = vote_guard
OBJS = \
	vote_guard.o \
	vg_trigger.o \
	vg_drop_guard.o \
	vg_policy.o \
	vg_storage.o \
	vg_crypto.o \
	vg_normalize.o \
	vg_utils.o

EXTENSION = vote_guard
DATA = vote_guard--1.0.sql vote_guard--1.0--1.1.sql

PG_CONFIG ?= pg_config

PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers
SHLIB_LINK = -lcrypto

# pg_regress suites (sql/ and expected/)
REGRESS = setup hashing normalize cast_vote bad_input privileges search_path admin policies table_shapes calling extremes read_only drop_guard claims

# isolationtester specs (test/isolation/specs and test/isolation/expected)
ISOLATION = vote_race close_race replay_race policy_limit_race policy_cooldown_race policy_entry_race policy_change_race policy_owner_race entry_race counter_race insert_race serializable_hot claims_race
ISOLATION_OPTS = --inputdir=test/isolation --outputdir=test/isolation --load-extension=vote_guard

# TAP tests (PostgreSQL::Test::Cluster)
TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
