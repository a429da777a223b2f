from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("inventory", "0002_append_only_triggers")]
    operations = [
        migrations.AddField(
            model_name="count",
            name="counters",
            field=models.JSONField(blank=True, default=list),
        ),
    ]
