"""Request parsing: every API body is JSON, whatever Content-Type the client sent.

curl's ``-d`` sends ``application/x-www-form-urlencoded`` by default; answering that with
415 helps nobody, so any body is read as JSON and malformed JSON is a clear 400.
"""

from rest_framework.parsers import JSONParser


class AnyContentTypeJSONParser(JSONParser):
    media_type = "*/*"
