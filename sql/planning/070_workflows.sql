-- Spec: 003_5348cd3a2617ad4c.txt names workflows (from Phase 4) only as the parent of weekly_actuals
-- (workflow_id VARCHAR(50), e.g. 'test_workflow'; deleting one deletes its actuals).
-- Designed: name; status lifecycle draft -> running -> completed | failed, archived when closed;
-- season label and start_date/end_date of the planned period (end >= start);
-- forecast_parameters jsonb (horizon in weeks, model, categories, safety stock... as the forecast
-- step needs them, without schema changes); created_at/updated_at.

CREATE TABLE IF NOT EXISTS planning.workflows (
    workflow_id varchar(50) NOT NULL,
    name varchar(255) NOT NULL,
    status varchar(20) NOT NULL DEFAULT 'draft',
    season varchar(50),
    start_date date,
    end_date date,
    forecast_parameters jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT workflows_pkey PRIMARY KEY (workflow_id),
    CONSTRAINT workflows_status_check
        CHECK (status::text IN ('draft', 'running', 'completed', 'failed', 'archived')),
    CONSTRAINT workflows_end_date_check CHECK (end_date >= start_date),
    CONSTRAINT workflows_forecast_parameters_check CHECK (jsonb_typeof(forecast_parameters) = 'object')
);

CREATE OR REPLACE TRIGGER workflows_set_updated_at BEFORE UPDATE ON planning.workflows
    FOR EACH ROW EXECUTE FUNCTION planning.set_updated_at();

COMMENT ON TABLE planning.workflows IS
    'A planning workflow: forecast for a season, then week-by-week monitoring against actuals.';
COMMENT ON COLUMN planning.workflows.status IS 'draft, running, completed, failed or archived.';
COMMENT ON COLUMN planning.workflows.season IS 'Season planned, e.g. Spring 2025.';
COMMENT ON COLUMN planning.workflows.start_date IS 'First day of the planned period (week 1 starts here).';
COMMENT ON COLUMN planning.workflows.end_date IS 'Last day of the planned period.';
COMMENT ON COLUMN planning.workflows.forecast_parameters IS
    'JSON object of forecast settings, e.g. {"horizon_weeks": 12, "model": "prophet"}.';
