/* vote_guard 1.0 -> 1.1: upgrade script */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION vote_guard UPDATE TO '1.1'" to load this file. \quit
