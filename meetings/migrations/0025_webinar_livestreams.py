# Webinar live streams (issue 16): the mirror of a webinar's stream, and the webinar stream kinds.

import meetings.fields
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('meetings', '0024_approvals'),
    ]

    operations = [
        migrations.AddField(
            model_name='webinar',
            name='livestream_status',
            field=models.CharField(choices=[('stopped', 'Stopped'), ('live', 'Live')], default='stopped', max_length=10),
        ),
        migrations.AddField(
            model_name='webinar',
            name='page_url',
            field=models.CharField(blank=True, max_length=1024),
        ),
        migrations.AddField(
            model_name='webinar',
            name='resolution',
            field=models.CharField(blank=True, choices=[('', "Zoom's default"), ('720p', '720p'), ('1080p', '1080p')], max_length=5),
        ),
        migrations.AddField(
            model_name='webinar',
            name='stream_key',
            field=meetings.fields.EncryptedTextField(blank=True),
        ),
        migrations.AddField(
            model_name='webinar',
            name='stream_url',
            field=models.CharField(blank=True, max_length=1024),
        ),
        migrations.AlterField(
            model_name='action',
            name='kind',
            field=models.CharField(choices=[('end_meeting', 'End meeting'), ('recover_meeting', 'Recover meeting'), ('end_webinar', 'End webinar'), ('update_livestream', 'Configure live stream'), ('start_livestream', 'Start live stream'), ('stop_livestream', 'Stop live stream'), ('update_webinar_livestream', 'Configure webinar live stream'), ('start_webinar_livestream', 'Start webinar live stream'), ('stop_webinar_livestream', 'Stop webinar live stream'), ('fetch_past_meeting', 'Fetch past meeting details'), ('fetch_participants', 'Fetch past meeting participants'), ('sync', 'Sync account')], max_length=30),
        ),
        migrations.AlterField(
            model_name='batch',
            name='kind',
            field=models.CharField(choices=[('end_meeting', 'End meeting'), ('recover_meeting', 'Recover meeting'), ('end_webinar', 'End webinar'), ('update_livestream', 'Configure live stream'), ('start_livestream', 'Start live stream'), ('stop_livestream', 'Stop live stream'), ('update_webinar_livestream', 'Configure webinar live stream'), ('start_webinar_livestream', 'Start webinar live stream'), ('stop_webinar_livestream', 'Stop webinar live stream'), ('fetch_past_meeting', 'Fetch past meeting details'), ('fetch_participants', 'Fetch past meeting participants'), ('sync', 'Sync account')], max_length=30),
        ),
    ]
