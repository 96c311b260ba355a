from django.db import models


class StatsRollup(models.Model):
    """Counters from Redis rolled up per minute, hour or day (see monitoring/rollups.py)."""

    class Granularity(models.TextChoices):
        MINUTE = "minute"
        HOUR = "hour"
        DAY = "day"

    granularity = models.CharField(max_length=6, choices=Granularity.choices)
    period_start = models.DateTimeField()
    mask_operations = models.PositiveBigIntegerField(default=0)
    unmask_operations = models.PositiveBigIntegerField(default=0)
    identifiers = models.PositiveBigIntegerField(default=0)
    identifiers_by_kind = models.JSONField(default=dict)
    new_mappings = models.PositiveBigIntegerField(default=0)
    unresolved_tokens = models.PositiveBigIntegerField(default=0)
    requests = models.PositiveBigIntegerField(default=0)
    upstream_errors = models.PositiveBigIntegerField(default=0)
    latency_sum_ms = models.FloatField(default=0)
    latency_max_ms = models.FloatField(default=0)
    latency_p95_ms = models.FloatField(null=True, blank=True)
    latency_buckets = models.JSONField(default=dict, help_text="Histogram counts by upper bound in ms.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["granularity", "period_start"], name="unique_rollup_period")]
        ordering = ["-period_start"]

    def __str__(self) -> str:
        return f"{self.granularity} {self.period_start:%Y-%m-%d %H:%M}"


class TaskRun(models.Model):
    """One run of a periodic task, shown read-only in the admin."""

    class Status(models.TextChoices):
        RUNNING = "running"
        SUCCESS = "success"
        FAILED = "failed"

    task = models.CharField(max_length=100, db_index=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.task} {self.status}"


class BackupRecord(models.Model):
    """An RDB snapshot of the mapping database (see monitoring/backups.py)."""

    class Status(models.TextChoices):
        RUNNING = "running"
        OK = "ok"
        FAILED = "failed"

    file = models.CharField(max_length=500, blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    redis_version = models.CharField(max_length=32, blank=True)
    key_count = models.PositiveBigIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    verified = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("download_backup", "Can download backup files")]

    def __str__(self) -> str:
        return f"backup {self.created_at:%Y-%m-%d %H:%M} {self.status}"
