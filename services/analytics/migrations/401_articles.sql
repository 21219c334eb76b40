-- Self-service articles and their deflection counts.
--
-- One row per article (not revisions: questions about articles are only asked of
-- now), in every current generation, like the other read models: generation n's
-- table is `analytics_articles_g<n>` and readers use the view `analytics_articles`.
-- A database may be mid-rebuild when this runs, so the table is made for the live
-- generation and for the one being built (the rebuild then copies the live one's
-- with CREATE TABLE ... LIKE ... INCLUDING ALL: the generated column and the
-- indexes come along).
--
-- `search` is what SuggestAnswers matches: English stemming, the title weighing
-- more than the body. `self_served` counts customers who said the article solved
-- their problem with no ticket.
--
-- The tickets an article solved with no agent time are not a counter: a ticket
-- counts once, and no more once reopened. `analytics_self_served_g<n>` (view
-- `analytics_self_served`) holds one row per ticket a self-service article solves
-- now: written when the customer says the article solved it (again: the row is
-- replaced), deleted when the ticket is reopened. ListArticles counts an
-- article's rows.

DO $$
DECLARE
    g integer;
    live integer;
BEGIN
    FOR g IN
        SELECT generation FROM analytics_generations
        WHERE state IN ('live', 'building') ORDER BY generation
    LOOP
        EXECUTE format(
            'CREATE TABLE %I (
                article_id     uuid        PRIMARY KEY,
                tenant         text        NOT NULL,
                slug           text        NOT NULL,
                product_area   text        NOT NULL,
                title          text        NOT NULL,
                body           text        NOT NULL,
                revision       integer     NOT NULL,
                retired        boolean     NOT NULL DEFAULT false,
                updated_at     timestamptz NOT NULL,
                self_served    bigint      NOT NULL DEFAULT 0,
                search         tsvector    GENERATED ALWAYS AS (
                    setweight(to_tsvector(''english'', title), ''A'')
                    || setweight(to_tsvector(''english'', body), ''B'')
                ) STORED
            )',
            'analytics_articles_g' || g);
        -- Index names are per schema: each generation's carry its suffix.
        EXECUTE format('CREATE INDEX %I ON %I USING gin (search)',
            'analytics_articles_g' || g || '_search', 'analytics_articles_g' || g);
        EXECUTE format('CREATE INDEX %I ON %I (tenant, product_area)',
            'analytics_articles_g' || g || '_area', 'analytics_articles_g' || g);

        EXECUTE format(
            'CREATE TABLE %I (
                ticket_id  uuid        PRIMARY KEY,
                article_id uuid        NOT NULL,
                tenant     text        NOT NULL,
                solved_at  timestamptz NOT NULL
            )',
            'analytics_self_served_g' || g);
        EXECUTE format('CREATE INDEX %I ON %I (article_id)',
            'analytics_self_served_g' || g || '_article', 'analytics_self_served_g' || g);
    END LOOP;

    SELECT generation INTO live FROM analytics_generations WHERE state = 'live';
    IF live IS NULL THEN
        RAISE EXCEPTION 'analytics_generations has no live generation';
    END IF;
    EXECUTE format('CREATE VIEW analytics_articles AS SELECT * FROM %I',
        'analytics_articles_g' || live);
    EXECUTE format('CREATE VIEW analytics_self_served AS SELECT * FROM %I',
        'analytics_self_served_g' || live);
END
$$;
