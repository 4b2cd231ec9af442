"""Stream presets in the admin: saved live stream destinations per connection, managed by
administrators. The key is write-only: typed once, stored encrypted, never shown again; left
empty on an edit, the stored key stays. Editing or deleting a preset changes no stream already
configured from it (meetings/presets.py: an action copies the preset at the click)."""

from django import forms
from django.contrib import admin
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from ..forms import (
    PAGE_URL_MAX,
    STREAM_KEY_MAX,
    STREAM_URL_MAX,
    _no_control_characters,
    _page_url_validator,
    _stream_url_validator,
)
from ..models import StreamPreset
from .guards import SafeChangeList
from .scope import AccountScopedAdmin


class StreamPresetForm(forms.ModelForm):
    # A plain text field rather than the model's URLField's form field, which guesses a scheme
    # (and warns about Django 6's new guess): a page URL must say http:// or https:// itself.
    page_url = forms.CharField(
        label="Page URL",
        max_length=PAGE_URL_MAX,
        validators=[_page_url_validator],
        help_text="The page where viewers watch: http:// or https://.",
    )
    new_stream_key = forms.CharField(
        label="Stream key",
        required=False,
        max_length=STREAM_KEY_MAX,
        strip=False,
        validators=[_no_control_characters],
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only: the stored key is never shown again. Leave empty to keep it.",
    )

    class Meta:
        model = StreamPreset
        fields = ["account", "name", "stream_url", "page_url", "resolution"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The limits and schemes Zoom's live stream update holds every configuration to, so a
        # preset that saves here is one Zoom takes.
        self.fields["stream_url"].validators.append(_stream_url_validator)
        self.fields["stream_url"].max_length = STREAM_URL_MAX
        self.fields[
            "stream_url"
        ].help_text = "Where Zoom sends the stream: rtmp://, rtmps://, http:// or https://."
        if self.instance.pk and self.instance.stream_key:
            self.fields[
                "new_stream_key"
            ].help_text = (
                "A key is stored (never shown). Leave empty to keep it, or type a new one."
            )

    def clean_new_stream_key(self):
        key = self.cleaned_data["new_stream_key"]
        if not key.strip():
            if not (self.instance.pk and self.instance.stream_key):
                raise forms.ValidationError("Enter the stream key.", code="required")
            return ""
        return key

    def save(self, commit=True):
        preset = super().save(commit=False)
        key = self.cleaned_data.get("new_stream_key")
        if key:
            preset.stream_key = key
        if commit:
            preset.save()
        return preset


@admin.register(StreamPreset)
class StreamPresetAdmin(AccountScopedAdmin, SafeChangeList, admin.ModelAdmin):
    form = StreamPresetForm
    list_display = ("name", "account", "stream_url", "page_url", "resolution", "updated")
    list_filter = ("account",)
    search_fields = ("name", "stream_url")
    readonly_fields = ("created_by", "created", "updated")
    fields = (
        "account",
        "name",
        "stream_url",
        "new_stream_key",
        "page_url",
        "resolution",
        "created_by",
        "created",
        "updated",
    )

    def save_model(self, request, obj, form, change):
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @method_decorator(sensitive_post_parameters("new_stream_key"))
    def add_view(self, request, form_url="", extra_context=None):
        return super().add_view(request, form_url, extra_context)

    @method_decorator(sensitive_post_parameters("new_stream_key"))
    def change_view(self, request, object_id, form_url="", extra_context=None):
        return super().change_view(request, object_id, form_url, extra_context)
