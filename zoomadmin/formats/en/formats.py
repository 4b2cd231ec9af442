"""Date formats for English, which the admin uses to show the audit trail.

Django's own ("Nov. 22, 2026, 2:44 a.m.") drops the seconds and the time zone: nine retries of an
action within a minute all read "2:44 a.m.", and a supervisor comparing with a log line cannot
tell which zone it is in. The dashboard's pages write "22 Nov 2026, 02:44:17" already.
"""

DATETIME_FORMAT = "j M Y, H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s"
TIME_FORMAT = "H:i:s"
DATE_FORMAT = "j M Y"
