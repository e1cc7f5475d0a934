"""The metadata schema, as SQLAlchemy Core tables.

Timestamps are integer milliseconds since the epoch (as MLflow stores them) so that SQLite
and PostgreSQL agree exactly. Ids are 32-hex-character strings. Any change here needs an
Alembic migration in ``store/migrations/versions``; a test checks the two agree.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

ID = String(32)

experiments = Table(
    "experiments",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("description", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("experiment_id", ID, ForeignKey("experiments.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    Column("user", String(256), nullable=False),
    Column("source", JSON, nullable=False),  # git commit, dirty flag, diff digest
    Column("environment", JSON, nullable=False),  # python, platform, packages
    Column("error", Text, nullable=True),  # type, message and traceback of a FAILED run
    Index("ix_runs_experiment_start", "experiment_id", "start_time"),
)

params = Table(
    "params",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

tags = Table(
    "tags",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

# Every logged point. ``value`` is NULL exactly when ``is_nan`` (SQLite turns NaN into NULL).
metrics = Table(
    "metrics",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("run_id", ID, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Float(precision=53), nullable=True),
    Column("is_nan", Boolean, nullable=False, default=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_metrics_run_key_step", "run_id", "key", "step"),
)

# The last point of each (run, key) by (step, timestamp): what search and listings show.
latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Float(precision=53), nullable=True),
    Column("is_nan", Boolean, nullable=False, default=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_latest_metrics_key_value", "key", "value"),
)

run_artifacts = Table(
    "run_artifacts",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("kind", String(8), nullable=False),  # file | dir
    Column("size", BigInteger, nullable=False),
    Column("file_count", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("description", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("dataset_id", ID, ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("kind", String(8), nullable=False),  # file | dir
    Column("size", BigInteger, nullable=False),
    Column("file_count", Integer, nullable=False),
    Column("format", String(16), nullable=True),  # csv | parquet | None
    Column("source_path", Text, nullable=True),
    Column("row_count", BigInteger, nullable=True),
    Column("schema", JSON, nullable=True),
    Column("profile", JSON, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(256), nullable=True),
    UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_dataset_version"),
    Index("ix_dataset_versions_digest", "digest"),
)

run_inputs = Table(
    "run_inputs",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "dataset_version_id",
        ID,
        ForeignKey("dataset_versions.id", ondelete="RESTRICT"),
        primary_key=True,
    ),
    Column("context", String(64), nullable=True),  # e.g. training, evaluation
    Column("created_at", BigInteger, nullable=False),
)

# --- model registry (migration 0002) ------------------------------------------------------

registered_models = Table(
    "registered_models",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("description", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),  # last new version or alias move
)

# Immutable once written: nothing updates a row of this table (tags live beside it).
model_versions = Table(
    "model_versions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("model_id", ID, ForeignKey("registered_models.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    # RESTRICT: a run that produced a registered version keeps its lineage.
    Column("run_id", ID, ForeignKey("runs.id", ondelete="RESTRICT"), nullable=False),
    Column("artifact_path", String(1024), nullable=False),
    Column("package_digest", String(64), nullable=False),  # from run_artifacts, never a caller
    Column("flavor", String(32), nullable=False),
    Column("signature", JSON, nullable=True),
    Column("metrics", JSON, nullable=False),  # the run's latest metrics at registration
    Column("status", String(16), nullable=False),
    Column("description", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(256), nullable=True),
    UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),
    Index("ix_model_versions_run_id", "run_id"),
    Index("ix_model_versions_package_digest", "package_digest"),
)

model_version_tags = Table(
    "model_version_tags",
    metadata,
    Column("version_id", ID, ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column(
        "model_id", ID, ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("alias", String(64), primary_key=True),
    Column("version_id", ID, ForeignKey("model_versions.id", ondelete="RESTRICT"), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_model_aliases_version_id", "version_id"),
)

# Every alias move, kept forever and never updated: the registry's audit trail.
alias_events = Table(
    "alias_events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    # RESTRICT: the audit trail outlives nothing it describes.
    Column("model_id", ID, ForeignKey("registered_models.id", ondelete="RESTRICT"), nullable=False),
    Column("alias", String(64), nullable=False),
    Column("action", String(16), nullable=False),  # set | delete | rollback
    Column("from_version", Integer, nullable=True),  # NULL: the alias did not exist
    Column("to_version", Integer, nullable=True),  # NULL: the alias was deleted
    Column("reason", Text, nullable=True),
    Column("actor", String(256), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_alias_events_model_alias", "model_id", "alias", "id"),
)

# --- API tokens (migration 0003) ----------------------------------------------------------

# Bearer tokens of ``ctloop server --auth``. Only the sha256 of a secret is kept: a copy of
# the database lets nobody call the server.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(128), nullable=True, unique=True),  # several NULLs are allowed
    Column("scope", String(16), nullable=False),  # read | write | admin
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 hex of the secret
    Column("created_at", BigInteger, nullable=False),
    Column("last_used_at", BigInteger, nullable=True),  # updated at most once a minute
    Column("revoked_at", BigInteger, nullable=True),
)

# --- pipelines and validation suites (migration 0004) -------------------------------------

# One execution of a pipeline. Params and metrics logged by its steps go to the tracking
# run ``run_id`` (created with the pipeline run); ``graph`` is the DAG as planned.
pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("pipeline", String(256), nullable=False),  # the pipeline's name
    Column("run_id", ID, ForeignKey("runs.id", ondelete="RESTRICT"), nullable=True),
    Column("status", String(16), nullable=False),  # RUNNING | COMPLETED | FAILED
    Column("executor", String(16), nullable=False),  # inline | local | ray
    Column("params", JSON, nullable=False),
    Column("graph", JSON, nullable=False),  # [{name, step, upstream: [...]}] in plan order
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    Column("user", String(256), nullable=False),
    Column("error", Text, nullable=True),
    Index("ix_pipeline_runs_pipeline_start", "pipeline", "start_time"),
)

# One step of one pipeline run. ``inputs`` and ``outputs`` hold artifact references
# ({name: {digest, kind, materializer, type}}); a cache hit points ``cached_from`` at the
# step run whose outputs it reused.
step_runs = Table(
    "step_runs",
    metadata,
    Column("id", ID, primary_key=True),
    Column(
        "pipeline_run_id", ID, ForeignKey("pipeline_runs.id", ondelete="CASCADE"), nullable=False
    ),
    Column("name", String(256), nullable=False),  # unique within the pipeline run
    Column("step", String(512), nullable=False),  # module:qualname of the function
    Column("status", String(16), nullable=False),
    Column("cache_key", String(64), nullable=True),
    Column("cache_hit", Boolean, nullable=False, default=False),
    Column("cached_from", ID, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("params", JSON, nullable=False),
    Column("inputs", JSON, nullable=False),
    Column("outputs", JSON, nullable=False),
    Column("upstream", JSON, nullable=False),  # names of the step runs it waited for
    Column("start_time", BigInteger, nullable=True),
    Column("end_time", BigInteger, nullable=True),
    Column("error", Text, nullable=True),
    Column("logs", JSON, nullable=True),  # {"stdout": digest, "stderr": digest}
    UniqueConstraint("pipeline_run_id", "name", name="uq_step_runs_pipeline_run_name"),
    Index("ix_step_runs_cache_key", "cache_key", "status"),
)

# Validation suites attached to a dataset version; the YAML itself is a blob (``digest``).
dataset_suites = Table(
    "dataset_suites",
    metadata,
    Column(
        "dataset_version_id",
        ID,
        ForeignKey("dataset_versions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("name", String(128), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(256), nullable=True),
)

# The desired serving state of an endpoint. Routes and shadows live in the row (JSON) so a
# replica's poll is one indexed read; ``revision`` goes up by one on every change.
deployments = Table(
    "deployments",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    # RESTRICT: a model that is being served cannot disappear under its deployment.
    Column("model_id", ID, ForeignKey("registered_models.id", ondelete="RESTRICT"), nullable=False),
    Column("routes", JSON, nullable=False),  # [{"version", "weight", "variant"}]
    Column("shadows", JSON, nullable=False),  # [version, …]
    Column("sticky_key", String(200), nullable=True),  # header:NAME | field:NAME
    Column("log_payloads", Boolean, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("description", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_deployments_model_id", "model_id"),
)

# Every revision of a deployment as it was set, never updated; gone with its deployment.
deployment_events = Table(
    "deployment_events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("deployment_id", ID, ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("routes", JSON, nullable=False),
    Column("shadows", JSON, nullable=False),
    Column("sticky_key", String(200), nullable=True),
    Column("reason", Text, nullable=True),
    Column("actor", String(256), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("deployment_id", "revision", name="uq_deployment_events_deployment_revision"),
)

# --- monitors, reports and alerts (migration 0006) ----------------------------------------

# The monitor of a deployment (at most one), gone with it. ``profile`` is the frozen
# reference profile (ReferenceProfile.to_dict(), up to a few MB): JSON is TEXT on SQLite and
# ``json`` (text, no size limit short of 1 GB) on PostgreSQL, so both hold it as it is.
monitors = Table(
    "monitors",
    metadata,
    Column("id", ID, primary_key=True),
    Column(
        "deployment_id",
        ID,
        ForeignKey("deployments.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    Column("reference", String(300), nullable=False),  # resolved at creation: churn/3
    Column("reference_given", String(300), nullable=False),  # as given: churn@champion
    Column("features", JSON, nullable=True),  # [name, …]; NULL: every profiled column
    Column("window", String(64), nullable=False),  # a duration (1h) or last:N rows
    Column("drift_share", Float(precision=53), nullable=False),
    Column("rules", JSON, nullable=False),  # [rule config, …] as rules_from_config reads
    Column("sinks", JSON, nullable=False),  # [sink config, …] as sinks_from_config reads
    Column("cooldown_seconds", Float(precision=53), nullable=False),
    Column("profile", JSON, nullable=False),
    Column("estimation", JSON, nullable=True),  # reference data of label-free estimation
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("created_by", String(256), nullable=True),
)

# One evaluation of a window (a Report), never updated; gone with its deployment. The
# summary columns are what listings show without parsing ``body`` (Report.to_dict()).
monitor_reports = Table(
    "monitor_reports",
    metadata,
    Column("id", String(64), primary_key=True),  # the Report's own id
    Column("deployment_id", ID, ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", BigInteger, nullable=False),  # when the report was built
    Column("window_start", BigInteger, nullable=True),
    Column("window_end", BigInteger, nullable=True),
    Column("rows", BigInteger, nullable=False),  # rows of the current window
    Column("drifted", Boolean, nullable=False),
    Column("drift_share", Float(precision=53), nullable=True),  # measured share drifted
    Column("drifted_features", JSON, nullable=False),
    Column("body", JSON, nullable=False),
    Column("html_uri", Text, nullable=True),
    Index("ix_monitor_reports_deployment_created", "deployment_id", "created_at"),
)

# Every alert that fired (past the cooldown), with what each sink did; never updated.
# ``report_id`` has no foreign key: an alert may come from a report that was not stored.
monitor_alerts = Table(
    "monitor_alerts",
    metadata,
    Column("id", String(64), primary_key=True),  # the Alert's own id
    Column("deployment_id", ID, ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False),
    Column("report_id", String(64), nullable=True),
    Column("kind", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("value", Float(precision=53), nullable=True),
    Column("threshold", Float(precision=53), nullable=True),
    Column("dedup_key", String(512), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("body", JSON, nullable=False),  # Alert.to_dict() plus "deliveries"
    Index("ix_monitor_alerts_deployment_created", "deployment_id", "created_at"),
)

# --- the continuous-training controller (migration 0007) ----------------------------------

# The policy of a deployment (at most one), gone with it: the YAML as the user gave it and
# the parsed form the controller reads (``ctloop.loop.policy``). A row here is what makes
# ``ctloop loop run --all`` pick the deployment up.
loop_policies = Table(
    "loop_policies",
    metadata,
    Column(
        "deployment_id",
        ID,
        ForeignKey("deployments.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("source", Text, nullable=False),
    Column("policy", JSON, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("created_by", String(256), nullable=True),
)

# Where the controller is for a deployment: one row, written by compare-and-set on
# ``revision`` (up by one on every transition) together with its loop event. No row means
# STABLE at revision 0. ``lease_owner``/``lease_expires_at`` (ms) say which controller may
# act on the deployment until when; taking or giving back the lease leaves ``revision``.
loop_states = Table(
    "loop_states",
    metadata,
    Column(
        "deployment_id",
        ID,
        ForeignKey("deployments.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("state", String(16), nullable=False),
    Column("step", Integer, nullable=True),  # the canary step, when in CANARY
    Column("candidate_version", Integer, nullable=True),
    Column("data", JSON, nullable=False),  # the controller's working memory
    Column("revision", Integer, nullable=False),
    Column("lease_owner", String(256), nullable=True),
    Column("lease_expires_at", BigInteger, nullable=True),
    Column("updated_at", BigInteger, nullable=False),  # last transition (or row creation)
)

# The controller's audit trail: one row per transition or note, never updated; gone with its
# deployment. ``seq`` counts a deployment's events from 1.
loop_events = Table(
    "loop_events",
    metadata,
    Column("id", ID, primary_key=True),
    Column("deployment_id", ID, ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("from_state", String(16), nullable=False),
    Column("to_state", String(16), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("summary", Text, nullable=False),
    Column("evidence", JSON, nullable=False),
    Column("links", JSON, nullable=False),  # report ids, pipeline run id, model version…
    Column("actor", String(256), nullable=False),
    UniqueConstraint("deployment_id", "seq", name="uq_loop_events_deployment_seq"),
    Index("ix_loop_events_deployment_created", "deployment_id", "created_at"),
)
