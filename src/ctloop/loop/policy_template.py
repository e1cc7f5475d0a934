"""The commented policy a user starts from (``ctloop loop init``)."""

from __future__ import annotations


def default_policy_yaml(
    deployment: str,
    dataset: str = "churn@latest",
    pipeline: str = "examples.churn.pipeline:churn_pipeline",
) -> str:
    """A commented policy to start from, with the documented defaults written out."""
    from string import Template

    lines = []
    for line, filled in zip(
        _TEMPLATE.splitlines(),
        Template(_TEMPLATE)
        .substitute(deployment=deployment, dataset=dataset, pipeline=pipeline)
        .splitlines(),
        strict=True,
    ):
        code, sep, comment = filled.partition("  # ")
        if "$" in line and sep and code.strip():  # keep the comments in their column
            filled = f"{code.rstrip():<{_COMMENT_COLUMN - 1}} # {comment.lstrip()}"
        lines.append(filled)
    return "\n".join(lines) + "\n"


#: Where the template's end-of-line comments start.
_COMMENT_COLUMN = 36


_TEMPLATE = """\
# The continuous-training policy of deployment '$deployment' (docs/loop.md, "Policies").
# Read it with: ctloop.loop.load_policy("policy.yaml")
deployment: $deployment
model: $deployment                  # the registered model retrained versions join

triggers:                           # at least one; each may be left out (off)
  drift:                            # the monitor's windows drift ...
    share: 0.3                      #   at least this share of the features drifted (or null)
    features: []                    #   ... or any of these named features drifted
    consecutive: 2                  #   ... in this many windows in a row
  performance:                      # the live model's metric falls too low
    metric: accuracy                #   higher is better: accuracy, f1, roc_auc, ...
    source: realised                #   realised (feedback labels) or estimated (no labels:
                                    #   accuracy, f1, roc_auc; blind to concept drift)
    drop: 0.02                      #   more than this below the champion's reference value
    # below: 0.80                   #   ... or below this absolute value (one of drop/below)
    min_labels: 500                 #   realised only: labelled rows a window needs
    consecutive: 1
  # schedule: {every: 7d}           # or {cron: "0 3 * * MON"} (UTC; quote it)
  # new_data: {dataset: churn}      # a new version of this dataset was added
  manual: true                      # ctloop loop trigger $deployment --reason TEXT

training_data:
  dataset: $dataset                 # a dataset version: NAME@latest or NAME@N
  # feedback: {window: 30d, min_labels: 100}   # logged predictions joined with labels
  holdout: {fraction: 0.2, split: random, seed: 0}  # split: random or time (newest rows)

pipeline:
  target: $pipeline                 # module:attribute or path/to/file.py:attribute
  params: {}                        # passed to every retrain (JSON values)
  executor: local                   # inline, local or ray

gate:                               # as ctloop.evaluation.Gate takes it
  thresholds: ["roc_auc >= 0.70"]
  bootstrap: {metric: roc_auc, confidence: 0.95, margin: -0.01, resamples: 1000, seed: 0}
  require_champion: false

rollout:
  steps: [10, 50, 100]              # % of traffic to the candidate, ending at 100
  min_requests: 200                 # per step, before its analysis counts
  interval: 5m                      # analysis interval
  failed_checks_limit: 2            # failed analyses before rolling back
  checks:                           # null turns a check off
    error_rate: {max_increase: 0.01}                      # <= champion's + 0.01
    latency: null                   # e.g. {p99_below_ms: 250}
    prediction_drift: {method: jensenshannon, threshold: 0.1}
    metric: {name: accuracy, margin: 0.02, min_labels: 100}  # realised, on feedback

guards:
  cooldown: 6h                      # after a retrain, none sooner than this
  max_retrains_per_day: 4
  during_canary: defer              # defer (wait), ignore (drop) or restart
"""
