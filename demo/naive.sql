-- A typical vote handler, written the usual way: check, then write.
-- One pgbench transaction is one HTTP request from the same voter.
SELECT count(*) AS already FROM demo.naive_votes WHERE voter_ip = '203.0.113.7'
\gset
-- the application does its own work between the check and the write
\sleep 20 ms
\if :already = 0
INSERT INTO demo.naive_votes (entry_id, voter_ip) VALUES (1, '203.0.113.7');
SELECT votes FROM demo.naive_entries WHERE entry_id = 1
\gset
UPDATE demo.naive_entries SET votes = :votes + 1 WHERE entry_id = 1;
\endif
