from django.db import migrations, models

from meetings.migration_operations import AddIndexOnline


class Migration(migrations.Migration):
    # Built CONCURRENTLY on PostgreSQL, which a transaction does not allow: writes go on.
    atomic = False

    dependencies = [
        ("meetings", "0028_approval_kind_choices"),
    ]

    operations = [
        AddIndexOnline(
            model_name="meeting",
            index=models.Index(
                fields=["type", "status", "-start_time", "-id"], name="meeting_type_status_idx"
            ),
        ),
        AddIndexOnline(
            model_name="meeting",
            index=models.Index(
                fields=["type", "-start_time", "-id"], name="meeting_type_start_idx"
            ),
        ),
    ]
