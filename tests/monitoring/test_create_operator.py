from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command


@pytest.mark.django_db
def test_it_creates_the_first_operator_and_prints_only_the_password():
    out = StringIO()
    call_command("create_operator", stdout=out)
    password = out.getvalue().strip()
    user = get_user_model().objects.get(username="admin")
    assert user.is_superuser and user.check_password(password)


@pytest.mark.django_db
def test_it_does_nothing_once_an_operator_exists():
    get_user_model().objects.create_superuser("someone", None, "pw")
    out = StringIO()
    call_command("create_operator", stdout=out)
    assert out.getvalue() == ""
    assert not get_user_model().objects.filter(username="admin").exists()
