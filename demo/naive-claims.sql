-- A typical "limited seats" handler, written the usual way: count the
-- claims, then write one if there is room.  One pgbench transaction is one
-- request of a distinct user.
SELECT nextval('demo.claimant') AS u
\gset
SELECT count(*) AS taken FROM demo.naive_claims
\gset
-- the application does its own work between the check and the write
\sleep 20 ms
\if :taken < 100
INSERT INTO demo.naive_claims (user_id) VALUES ('u' || :u);
\endif
