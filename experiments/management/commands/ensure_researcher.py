"""`manage.py ensure_researcher`: create (or reset) a researcher login, idempotently."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create a researcher account, or reset its password if it exists."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="researcher")
        parser.add_argument("--password", required=True)
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--staff", action="store_true", help="Also let the account use the Django admin."
        )

    def handle(self, *args, username: str, password: str, email: str, staff: bool, **options):
        if not username.strip():
            raise CommandError("--username must not be empty.")
        if len(password) < 8:
            raise CommandError("--password must have at least 8 characters.")
        user, created = get_user_model().objects.get_or_create(
            username=username, defaults={"email": email}
        )
        user.set_password(password)
        if staff:
            user.is_staff = True
            user.is_superuser = True
        user.save()
        verb = "Created" if created else "Updated"
        self.stdout.write(self.style.SUCCESS(f"{verb} researcher '{username}'."))
