-- Analytics read models (migration versions 400–499).
--
-- Each row keeps its versions: a ticket's (or customer's) row is written anew for
-- every event, and the version it replaces is closed. A version is valid in event
-- time from `valid_from` until `valid_to`, and in stream order from `seq_from`
-- until `seq_to` (exclusive), so a question can be answered as of any past moment
-- (valid_from <= t < valid_to) or as of one stream position (pages of one search).
-- The live version has valid_to = 'infinity' and seq_to = the largest bigint.
-- Enumerations hold their frontline.v1 wire numbers.
--
-- Generations: the read models can be rebuilt from the log into fresh tables
-- beside the live ones (generation n's tables end in `_g<n>`, its consumer and
-- checkpoint are `analytics-g<n>`); readers use the views without the suffix,
-- which a rebuild points at the new generation in one transaction.

CREATE TABLE analytics_tickets_g1 (
    ticket_id         uuid        NOT NULL,
    -- This row's revision (1, 2, ...): a customer's event can change a ticket's row.
    revision          integer     NOT NULL,
    -- The ticket's version (its events so far).
    version           bigint      NOT NULL,
    seq_from          bigint      NOT NULL,
    seq_to            bigint      NOT NULL DEFAULT 9223372036854775807,
    valid_from        timestamptz NOT NULL,
    valid_to          timestamptz NOT NULL DEFAULT 'infinity',
    tenant            text        NOT NULL,
    customer_id       uuid        NOT NULL,
    subject           text        NOT NULL,
    status            smallint    NOT NULL,
    channel           smallint    NOT NULL,
    product_area      text        NOT NULL,
    priority          smallint    NOT NULL,
    tier              smallint    NOT NULL,
    assignee          text        NOT NULL DEFAULT '',
    opened_at         timestamptz NOT NULL,
    first_reply_at    timestamptz,
    solved_at         timestamptz,
    ever_solved       boolean     NOT NULL DEFAULT false,
    updated_at        timestamptz NOT NULL,
    reopens           integer     NOT NULL DEFAULT 0,
    contacts          integer     NOT NULL DEFAULT 1,
    -- SLA clocks (wire numbers of SlaClockKind) warned and still running.
    warned_clocks     smallint[]  NOT NULL DEFAULT '{}',
    breaches          integer     NOT NULL DEFAULT 0,
    minutes_logged    integer     NOT NULL DEFAULT 0,
    csat              smallint,
    declines_proposed integer     NOT NULL DEFAULT 0,
    declines_approved integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (ticket_id, revision)
);

CREATE UNIQUE INDEX analytics_tickets_live ON analytics_tickets_g1 (ticket_id)
    WHERE seq_to = 9223372036854775807;
CREATE INDEX analytics_tickets_opened ON analytics_tickets_g1 (tenant, opened_at, ticket_id);
CREATE INDEX analytics_tickets_updated ON analytics_tickets_g1 (tenant, updated_at, ticket_id);
CREATE INDEX analytics_tickets_customer ON analytics_tickets_g1 (customer_id);

CREATE TABLE analytics_customers_g1 (
    customer_id       uuid        NOT NULL,
    revision          integer     NOT NULL,
    version           bigint      NOT NULL,
    seq_from          bigint      NOT NULL,
    seq_to            bigint      NOT NULL DEFAULT 9223372036854775807,
    valid_from        timestamptz NOT NULL,
    valid_to          timestamptz NOT NULL DEFAULT 'infinity',
    tenant            text        NOT NULL,
    -- The tier a manager set (wire number); NULL: the tenant's default applies.
    tier              smallint,
    -- The record this one is linked into (the same person), if any.
    linked_into       uuid,
    -- The latest NPS answer (0–10), if any.
    nps               smallint,
    forgotten         boolean     NOT NULL DEFAULT false,
    first_contact_at  timestamptz NOT NULL,
    PRIMARY KEY (customer_id, revision)
);

CREATE UNIQUE INDEX analytics_customers_live ON analytics_customers_g1 (customer_id)
    WHERE seq_to = 9223372036854775807;
CREATE INDEX analytics_customers_tenant ON analytics_customers_g1 (tenant);
CREATE INDEX analytics_customers_linked ON analytics_customers_g1 (linked_into)
    WHERE linked_into IS NOT NULL;

-- Each tenant's SLA policy's default tier (for customers nobody put in a tier).
-- Each tenant's SLA policy, every version (valid as the rows above): its default
-- tier (for customers nobody put in a tier) and the whole policy as JSON (its
-- business hours count response times).
CREATE TABLE analytics_policies_g1 (
    tenant       text        NOT NULL,
    version      bigint      NOT NULL,
    seq_from     bigint      NOT NULL,
    seq_to       bigint      NOT NULL DEFAULT 9223372036854775807,
    valid_from   timestamptz NOT NULL,
    valid_to     timestamptz NOT NULL DEFAULT 'infinity',
    default_tier smallint    NOT NULL,
    policy       text        NOT NULL,
    PRIMARY KEY (tenant, version)
);

CREATE UNIQUE INDEX analytics_policies_live ON analytics_policies_g1 (tenant)
    WHERE seq_to = 9223372036854775807;

CREATE VIEW analytics_tickets AS SELECT * FROM analytics_tickets_g1;
CREATE VIEW analytics_customers AS SELECT * FROM analytics_customers_g1;
CREATE VIEW analytics_policies AS SELECT * FROM analytics_policies_g1;

-- Every generation: the live one (exactly one), one being built, retired ones
-- (their tables dropped).
CREATE TABLE analytics_generations (
    generation integer     PRIMARY KEY,
    state      text        NOT NULL CHECK (state IN ('building', 'live', 'retired')),
    started_at timestamptz NOT NULL DEFAULT now(),
    live_at    timestamptz
);
CREATE UNIQUE INDEX analytics_generations_one_live ON analytics_generations (state)
    WHERE state IN ('live', 'building');
INSERT INTO analytics_generations (generation, state, live_at) VALUES (1, 'live', now());
