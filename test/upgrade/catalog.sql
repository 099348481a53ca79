-- vote_guard: the extension's catalog as text lines, one property a line,
-- "object | property | value", sorted: two databases whose lines are equal
-- have the same extension.  Names, never OIDs.  Read by test/upgrade/update.pl.
--
-- Table columns are compared by name (type, typmod, not null, default,
-- collation, identity, generated), and a table's physical column list is a
-- line of its own, dropped columns included as "-": PostgreSQL cannot
-- reorder a table's columns (ALTER TABLE ADD COLUMN puts a new one last, a
-- dropped one stays as a hole), so a fresh install must lay its columns out
-- as the upgrade did, and vote_guard's C code depends on that layout (the
-- fast path of vg_storage.c takes only the created shape of votes and
-- counters, and the triggers read contest_id and entry_id by position).
-- Composite types and function results are compared in order: they are the
-- API's column order.
--
-- ACLs are compared as the privileges they grant: sorted, and a null ACL
-- (the default) as the default it stands for (acldefault), so that
-- {owner=arwdDxt/owner} from REVOKE ... FROM PUBLIC on PostgreSQL 15 and the
-- null that pg_upgrade to 17 leaves (the owner's default, MAINTAIN included)
-- compare equal to the {owner=arwdDxtm/owner} of a fresh install on 17.
WITH
ext AS (
    SELECT x.oid, x.extname, x.extnamespace FROM pg_catalog.pg_extension x
     WHERE x.extname = 'vote_guard'),
nsp AS (SELECT x.extnamespace AS oid FROM ext x),
member AS (
    SELECT d.classid, d.objid, d.objsubid FROM pg_catalog.pg_depend d, ext x
     WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
       AND d.refobjid = x.oid AND d.deptype = 'e'),
rel AS (
    SELECT c.oid, c.relname, c.relkind, pg_catalog.format('%s %s',
           CASE c.relkind WHEN 'r' THEN 'table' WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence'
                          WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                          WHEN 'c' THEN 'composite type' WHEN 'p' THEN 'partitioned table'
                          ELSE 'relation ' || c.relkind::text END,
           c.oid::pg_catalog.regclass) AS obj
      FROM pg_catalog.pg_class c, nsp n WHERE c.relnamespace = n.oid),
fn AS (
    SELECT p.oid, 'function ' || p.oid::pg_catalog.regprocedure AS obj
      FROM pg_catalog.pg_proc p, nsp n WHERE p.pronamespace = n.oid),
lines (obj, prop, val) AS (
    -- the extension
    SELECT 'extension vote_guard', 'version', x.extversion FROM pg_catalog.pg_extension x, ext e
     WHERE x.oid = e.oid
    UNION ALL
    SELECT 'extension vote_guard', 'schema', e.extnamespace::pg_catalog.regnamespace::text FROM ext e
    UNION ALL
    SELECT 'extension vote_guard', 'relocatable', x.extrelocatable::text
      FROM pg_catalog.pg_extension x, ext e WHERE x.oid = e.oid
    UNION ALL
    SELECT 'extension vote_guard', 'owner', x.extowner::pg_catalog.regrole::text
      FROM pg_catalog.pg_extension x, ext e WHERE x.oid = e.oid
    UNION ALL
    -- pg_extension_config_dump: what pg_dump saves, as a set
    SELECT 'extension vote_guard', 'dumped ' || t.cfg::pg_catalog.regclass, pg_catalog.quote_literal(t.cond)
      FROM pg_catalog.pg_extension x, ext e,
           LATERAL ROWS FROM (pg_catalog.unnest(x.extconfig), pg_catalog.unnest(x.extcondition)) AS t(cfg, cond)
     WHERE x.oid = e.oid
    UNION ALL
    SELECT 'extension vote_guard', 'member',
           pg_catalog.pg_describe_object(m.classid, m.objid, m.objsubid) FROM member m
    UNION ALL
    SELECT 'schema ' || n.oid::pg_catalog.regnamespace, 'acl',
           (SELECT pg_catalog.array_agg(a::text ORDER BY a::text)
              FROM pg_catalog.unnest(COALESCE(s.nspacl, pg_catalog.acldefault('n', s.nspowner))) a)::text
      FROM nsp n JOIN pg_catalog.pg_namespace s ON s.oid = n.oid
    UNION ALL
    SELECT 'schema ' || n.oid::pg_catalog.regnamespace, 'owner', s.nspowner::pg_catalog.regrole::text
      FROM nsp n JOIN pg_catalog.pg_namespace s ON s.oid = n.oid
    UNION ALL
    -- every object of the schema says whether it belongs to the extension
    SELECT r.obj, 'member', EXISTS (SELECT 1 FROM member m
                                     WHERE m.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                                       AND m.objid = r.oid)::text
      FROM rel r WHERE r.relkind NOT IN ('i', 'c')
    UNION ALL
    SELECT f.obj, 'member', EXISTS (SELECT 1 FROM member m
                                     WHERE m.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                                       AND m.objid = f.oid)::text
      FROM fn f
    UNION ALL
    -- functions
    SELECT f.obj, v.prop, v.val
      FROM fn f JOIN pg_catalog.pg_proc p ON p.oid = f.oid
      CROSS JOIN LATERAL (VALUES
        ('arguments', pg_catalog.pg_get_function_arguments(p.oid)),
        ('result', pg_catalog.pg_get_function_result(p.oid)),
        ('kind', p.prokind::text),
        ('language', (SELECT l.lanname::text FROM pg_catalog.pg_language l WHERE l.oid = p.prolang)),
        ('volatility', p.provolatile::text),
        ('strict', p.proisstrict::text),
        ('security definer', p.prosecdef::text),
        ('leakproof', p.proleakproof::text),
        ('parallel', p.proparallel::text),
        ('cost', p.procost::text),
        ('rows', p.prorows::text),
        ('returns set', p.proretset::text),
        ('config', p.proconfig::text),
        ('acl', (SELECT pg_catalog.array_agg(a::text ORDER BY a::text)
                   FROM pg_catalog.unnest(COALESCE(p.proacl, pg_catalog.acldefault('f', p.proowner))) a)::text),
        ('owner', p.proowner::pg_catalog.regrole::text),
        ('library', p.probin),
        -- the C symbol, or a digest of the body
        ('source', CASE WHEN p.probin IS NOT NULL THEN p.prosrc
                        ELSE 'md5 ' || pg_catalog.md5(p.prosrc) END),
        ('comment', pg_catalog.obj_description(p.oid, 'pg_proc'))) AS v(prop, val)
    UNION ALL
    -- relations
    SELECT r.obj, v.prop, v.val
      FROM rel r JOIN pg_catalog.pg_class c ON c.oid = r.oid
      CROSS JOIN LATERAL (VALUES
        ('persistence', c.relpersistence::text),
        ('reloptions', (SELECT pg_catalog.array_agg(o ORDER BY o)
                          FROM pg_catalog.unnest(c.reloptions) o)::text),
        ('acl', (SELECT pg_catalog.array_agg(a::text ORDER BY a::text)
                   FROM pg_catalog.unnest(COALESCE(c.relacl, pg_catalog.acldefault(
                            CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", c.relowner))) a
                  WHERE c.relkind <> 'i')::text),
        ('owner', c.relowner::pg_catalog.regrole::text),
        ('row security', c.relrowsecurity::text || '/' || c.relforcerowsecurity::text),
        ('replica identity', c.relreplident::text),
        ('access method', (SELECT a.amname::text FROM pg_catalog.pg_am a WHERE a.oid = c.relam)),
        ('comment', pg_catalog.obj_description(c.oid, 'pg_class'))) AS v(prop, val)
     WHERE r.relkind <> 'c'
    UNION ALL
    -- columns of tables, views and sequences, by name
    SELECT r.obj, 'column ' || pg_catalog.quote_ident(a.attname),
           pg_catalog.format_type(a.atttypid, a.atttypmod)
           || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
           || COALESCE(' default ' || pg_catalog.pg_get_expr(d.adbin, d.adrelid), '')
           || CASE a.attidentity WHEN 'a' THEN ' generated always as identity'
                                 WHEN 'd' THEN ' generated by default as identity' ELSE '' END
           || CASE a.attgenerated WHEN 's' THEN ' stored' ELSE '' END
           || COALESCE(' collate ' || (SELECT co.collname::text FROM pg_catalog.pg_collation co
                                        WHERE co.oid = a.attcollation
                                          AND a.attcollation <> t.typcollation), '')
           || COALESCE(' storage ' || NULLIF(a.attstorage, t.typstorage)::text, '')
           || COALESCE(' statistics ' || NULLIF(a.attstattarget, -1), '')
           -- (pg_attver: a per-table stamp some builds keep there, not a setting)
           || COALESCE(' options ' || (SELECT pg_catalog.array_agg(o ORDER BY o)
                                         FROM pg_catalog.unnest(a.attoptions) o
                                        WHERE o NOT LIKE 'pg\_attver=%')::text, '')
           || COALESCE(' acl ' || (SELECT pg_catalog.array_agg(x::text ORDER BY x::text)
                                     FROM pg_catalog.unnest(a.attacl) x)::text, '')
           || COALESCE(' comment ' || pg_catalog.quote_literal(pg_catalog.col_description(c.oid, a.attnum)), '')
      FROM rel r JOIN pg_catalog.pg_class c ON c.oid = r.oid
      JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
      LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE r.relkind IN ('r', 'p', 'v', 'm', 'f')
    UNION ALL
    -- the physical column list (see the top), and a composite type's
    -- attributes in order
    SELECT r.obj, CASE WHEN r.relkind = 'c' THEN 'attributes' ELSE 'column layout' END,
           pg_catalog.string_agg(CASE WHEN a.attisdropped THEN '-'
                                      WHEN r.relkind = 'c' THEN pg_catalog.quote_ident(a.attname)
                                           || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod)
                                      ELSE pg_catalog.quote_ident(a.attname) END,
                                 ', ' ORDER BY a.attnum)
      FROM rel r JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0
     WHERE r.relkind IN ('r', 'p', 'c')
     GROUP BY r.obj, r.relkind
    UNION ALL
    -- indexes, constraints, triggers, rules and policies of the schema's tables
    SELECT 'table ' || i.indrelid::pg_catalog.regclass,
           'index ' || pg_catalog.quote_ident(ic.relname),
           pg_catalog.pg_get_indexdef(i.indexrelid)
           || CASE WHEN i.indisclustered THEN ' (clustered)' ELSE '' END
           || CASE WHEN i.indisreplident THEN ' (replica identity)' ELSE '' END
           || CASE WHEN NOT i.indisvalid THEN ' (invalid)' ELSE '' END
      FROM pg_catalog.pg_index i
      JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
      JOIN rel r ON r.oid = i.indrelid
    UNION ALL
    SELECT CASE WHEN co.conrelid <> 0 THEN 'table ' || co.conrelid::pg_catalog.regclass
                ELSE 'type ' || co.contypid::pg_catalog.regtype END,
           'constraint ' || pg_catalog.quote_ident(co.conname),
           pg_catalog.pg_get_constraintdef(co.oid)
           || CASE WHEN co.condeferrable THEN ' deferrable' ELSE '' END
           || CASE WHEN co.condeferred THEN ' initially deferred' ELSE '' END
           || CASE WHEN NOT co.convalidated THEN ' not valid' ELSE '' END
      FROM pg_catalog.pg_constraint co, nsp n WHERE co.connamespace = n.oid
    UNION ALL
    SELECT 'table ' || tg.tgrelid::pg_catalog.regclass,
           'trigger ' || pg_catalog.quote_ident(tg.tgname),
           pg_catalog.pg_get_triggerdef(tg.oid) || ' (enabled ' || tg.tgenabled::text || ')'
      FROM pg_catalog.pg_trigger tg JOIN rel r ON r.oid = tg.tgrelid
     WHERE NOT tg.tgisinternal
    UNION ALL
    SELECT 'table ' || pg_catalog.quote_ident(ru.schemaname) || '.' || pg_catalog.quote_ident(ru.tablename),
           'rule ' || pg_catalog.quote_ident(ru.rulename), ru.definition
      FROM pg_catalog.pg_rules ru, nsp n WHERE ru.schemaname = n.oid::pg_catalog.regnamespace::text
    UNION ALL
    SELECT 'table ' || pg_catalog.quote_ident(po.schemaname) || '.' || pg_catalog.quote_ident(po.tablename),
           'policy ' || pg_catalog.quote_ident(po.policyname),
           pg_catalog.concat_ws(' ', po.permissive, po.cmd, po.roles::text, po.qual, po.with_check)
      FROM pg_catalog.pg_policies po, nsp n WHERE po.schemaname = n.oid::pg_catalog.regnamespace::text
    UNION ALL
    -- sequences: their parameters and the column that owns them (not their values)
    SELECT 'sequence ' || s.seqrelid::pg_catalog.regclass, 'parameters',
           pg_catalog.format('as %s start %s increment %s min %s max %s cache %s cycle %s',
                             s.seqtypid::pg_catalog.regtype, s.seqstart, s.seqincrement,
                             s.seqmin, s.seqmax, s.seqcache, s.seqcycle)
      FROM pg_catalog.pg_sequence s JOIN rel r ON r.oid = s.seqrelid
    UNION ALL
    SELECT 'sequence ' || d.objid::pg_catalog.regclass, 'owned by ' || d.deptype::text,
           pg_catalog.pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid)
      FROM pg_catalog.pg_depend d JOIN rel r ON r.oid = d.objid AND r.relkind = 'S'
     WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.deptype IN ('a', 'i')
    UNION ALL
    -- types of the schema (composite types' attributes are above)
    SELECT 'type ' || t.oid::pg_catalog.regtype, 'kind',
           t.typtype::text || ' acl ' || (SELECT pg_catalog.array_agg(a::text ORDER BY a::text)
                                            FROM pg_catalog.unnest(COALESCE(t.typacl,
                                                     pg_catalog.acldefault('T', t.typowner))) a)::text
           || ' owner ' || t.typowner::pg_catalog.regrole::text
           || COALESCE(' comment ' || pg_catalog.quote_literal(pg_catalog.obj_description(t.oid, 'pg_type')), '')
      FROM pg_catalog.pg_type t, nsp n
     WHERE t.typnamespace = n.oid
       AND t.typcategory <> 'A'         -- an array type follows its element
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c    -- a table's row type
                        WHERE c.oid = t.typrelid AND c.relkind <> 'c')
    UNION ALL
    -- event triggers whose function is in the schema, or that are members
    SELECT 'event trigger ' || pg_catalog.quote_ident(e.evtname), 'definition',
           pg_catalog.format('on %s when tag in %s execute %s enabled %s owner %s',
                             e.evtevent, e.evttags::text, e.evtfoid::pg_catalog.regprocedure,
                             e.evtenabled, e.evtowner::pg_catalog.regrole)
      FROM pg_catalog.pg_event_trigger e
     WHERE (SELECT p.pronamespace FROM pg_catalog.pg_proc p WHERE p.oid = e.evtfoid) = (SELECT oid FROM nsp)
        OR EXISTS (SELECT 1 FROM member m
                    WHERE m.classid = 'pg_catalog.pg_event_trigger'::pg_catalog.regclass
                      AND m.objid = e.oid)
)
SELECT obj || ' | ' || prop || ' | ' || COALESCE(val, '(null)')
  FROM lines
 ORDER BY 1;
