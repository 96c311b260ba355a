"""Request validation and response shapes of the REST API (they also make the OpenAPI schema)."""

from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """A string and only a string: DRF's CharField would turn 123 into "123"."""

    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class TextOrJsonSerializer(serializers.Serializer):
    text = StrictCharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text="A text to process (exactly one of text, json).",
    )
    json = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text="Any JSON value: every string value in it is processed, keys are not.",
    )

    def validate(self, attrs: dict) -> dict:
        if ("text" in attrs) == ("json" in attrs):
            raise serializers.ValidationError("Send exactly one of `text` or `json`.")
        return attrs


class EntitySerializer(serializers.Serializer):
    token = serializers.CharField(help_text="The token, or the redaction marker of a redacted kind.")
    kind = serializers.CharField()
    start = serializers.IntegerField(help_text="Offset in the masked string (Unicode code points).")
    end = serializers.IntegerField()
    path = serializers.ListField(
        child=serializers.JSONField(), required=False, help_text="With `json`: keys and indexes to the string."
    )


class MaskResponseSerializer(serializers.Serializer):
    text = serializers.CharField(required=False)
    json = serializers.JSONField(required=False)
    entities = EntitySerializer(many=True)


class UnmaskResponseSerializer(serializers.Serializer):
    text = serializers.CharField(required=False)
    json = serializers.JSONField(required=False)
    unresolved = serializers.ListField(
        child=serializers.CharField(), help_text="Tokens not found (unknown or expired)."
    )


class ErrorDetailSerializer(serializers.Serializer):
    type = serializers.CharField()
    message = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    type = serializers.CharField(default="error")
    error = ErrorDetailSerializer()
