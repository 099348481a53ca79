-- The same request through vote_guard: one call on an entry with capacity 100.
SELECT nextval('demo.claimant') AS u
\gset
INSERT INTO demo.guarded_answers
SELECT error_code FROM vote_guard.cast_vote(:contest, 1, user_id => 'u' || :u);
