from django.contrib import admin

from monitoring.models import StatsRollup, TaskRun


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by periodic tasks: operators look, nobody edits."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(TaskRun)
class TaskRunAdmin(ReadOnlyAdmin):
    list_display = ["task", "status", "started_at", "finished_at", "duration", "short_error"]
    list_filter = ["status", "task"]
    search_fields = ["task", "error"]
    date_hierarchy = "started_at"
    readonly_fields = ["task", "status", "started_at", "finished_at", "error", "detail"]

    @admin.display(description="duration")
    def duration(self, run: TaskRun) -> str:
        if not run.finished_at:
            return "–"
        return f"{(run.finished_at - run.started_at).total_seconds():.2f} s"

    @admin.display(description="error")
    def short_error(self, run: TaskRun) -> str:
        return run.error[:80]


@admin.register(StatsRollup)
class StatsRollupAdmin(ReadOnlyAdmin):
    list_display = [
        "period_start",
        "granularity",
        "mask_operations",
        "unmask_operations",
        "identifiers",
        "requests",
        "upstream_errors",
        "latency_p95_ms",
    ]
    list_filter = ["granularity"]
    date_hierarchy = "period_start"
