/* vote_guard 1.0 -> 1.1: upgrade script */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION vote_guard UPDATE TO '1.1'" to load this file. \quit

------------------------------------------------------------------------------
-- Citus (issue 11): a node added after distribute() gets its id ranges.
--
-- On a node that joins after the tables are distributed, Citus's metadata
-- marks vote_guard's sequences as those of distributed tables, and its
-- utility hook refuses ALTER SEQUENCE on them ("Altering a distributed
-- sequence is currently not supported"): distribute() called again after
-- citus_add_node failed there.  The sequences are the node's own (every
-- node has the extension's), so citus_prepare_node() alters them with
-- Citus's DDL propagation off.  Without Citus the setting is a placeholder
-- nothing reads.
------------------------------------------------------------------------------

ALTER FUNCTION vote_guard.citus_prepare_node() SET citus.enable_ddl_propagation = off;
