"""manage.py expire_sessions: abandon every rater session, of every study, that has had no
answer for its study's idle limit, so its model's place goes to someone else. Nothing needs to
run it: the rater pages, model assignments and the researcher's pages of a study do the same
for that study. It is there for a server nobody visits for a while, or for cron."""

from django.core.management.base import BaseCommand

from experiments.models import Study
from experiments.rating.expiry import all_sessions_expire


class Command(BaseCommand):
    help = (
        "Abandon the rater sessions that have had no answer for their study's idle limit "
        "(Study.idle_minutes), freeing their places."
    )

    def handle(self, *args, **options):
        expired = all_sessions_expire()
        if not expired:
            self.stdout.write("No session was past its study's idle limit.")
            return
        names = dict(Study.objects.filter(public_id__in=expired).values_list("public_id", "name"))
        for public_id, count in expired.items():
            self.stdout.write(
                f"{names[public_id]} ({public_id}): {count} session{'s' if count != 1 else ''} "
                "abandoned"
            )
