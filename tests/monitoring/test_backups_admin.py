import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from masking.models import AuditLog
from monitoring.models import BackupRecord

pytestmark = pytest.mark.django_db


def staff_client(username: str, codenames: list[str]) -> Client:
    user = get_user_model().objects.create_user(username, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="monitoring", codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def backup_operator_client() -> Client:
    return staff_client("backup-operator", ["view_backuprecord", "add_backuprecord", "download_backup"])


@pytest.fixture
def viewer_client() -> Client:
    return staff_client("viewer", ["view_backuprecord"])


@pytest.fixture
def backup(settings, tmp_path) -> BackupRecord:
    settings.BACKUP_DIR = tmp_path
    path = tmp_path / "redis-20261125T120000Z-1.rdb"
    path.write_bytes(b"REDIS0010-pretend")
    return BackupRecord.objects.create(
        file=str(path), size_bytes=17, status=BackupRecord.Status.OK, verified=True, key_count=4
    )


def test_the_admin_lists_backups_with_their_verification_status(viewer_client, backup):
    BackupRecord.objects.create(status=BackupRecord.Status.FAILED, error="RdbError: checksum mismatch")

    page = viewer_client.get("/admin/monitoring/backuprecord/").content.decode()

    assert "redis-20261125T120000Z-1.rdb" in page
    assert "failed" in page and "ok" in page
    assert 'alt="True"' in page and 'alt="False"' in page  # the verified column


def test_staff_with_the_download_permission_can_download_a_backup(backup_operator_client, backup):
    response = backup_operator_client.get(f"/admin/monitoring/backuprecord/{backup.pk}/download/")

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"REDIS0010-pretend"
    assert 'filename="redis-20261125T120000Z-1.rdb"' in response["Content-Disposition"]
    assert AuditLog.objects.get().username == "backup-operator"


def test_staff_without_the_download_permission_get_403_and_no_link(viewer_client, backup):
    assert viewer_client.get(f"/admin/monitoring/backuprecord/{backup.pk}/download/").status_code == 403
    page = viewer_client.get("/admin/monitoring/backuprecord/").content.decode()
    assert "/download/" not in page


def test_anonymous_visitors_are_sent_to_the_login_page(backup):
    response = Client().get(f"/admin/monitoring/backuprecord/{backup.pk}/download/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_a_download_only_serves_files_inside_the_backup_directory(backup_operator_client, backup, tmp_path):
    outside = tmp_path.parent / "elsewhere.rdb"
    outside.write_bytes(b"not a backup")
    BackupRecord.objects.filter(pk=backup.pk).update(file=str(outside))

    response = backup_operator_client.get(f"/admin/monitoring/backuprecord/{backup.pk}/download/")

    assert response.status_code == 404


def test_back_up_now_queues_the_backup_task(backup_operator_client, redis_server):
    page = backup_operator_client.get("/admin/monitoring/backuprecord/").content.decode()
    assert "Back up now" in page

    response = backup_operator_client.post("/admin/monitoring/backuprecord/back-up-now/")

    assert response.status_code == 302
    queued = redis_server.client(2).lrange("celery", 0, -1)
    assert len(queued) == 1 and b"monitoring.tasks.backup_redis" in queued[0]


def test_back_up_now_is_also_an_admin_action(backup_operator_client, backup, redis_server):
    response = backup_operator_client.post(
        "/admin/monitoring/backuprecord/", {"action": "back_up_now", "_selected_action": [backup.pk]}
    )

    assert response.status_code == 302
    assert redis_server.client(2).llen("celery") == 1


def test_viewers_cannot_start_a_backup(viewer_client, redis_server):
    assert "Back up now" not in viewer_client.get("/admin/monitoring/backuprecord/").content.decode()
    assert viewer_client.post("/admin/monitoring/backuprecord/back-up-now/").status_code == 403
    assert redis_server.client(2).llen("celery") == 0
