-- The same request through vote_guard: one call, one round trip.
INSERT INTO demo.guarded_answers
SELECT error_code FROM vote_guard.cast_vote(:contest, 1, '203.0.113.7');
