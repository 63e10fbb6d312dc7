"""WSGI layers between gunicorn and the Flask app, outermost first.

Request ids, the access log, the error-body cap, the request timeout and SageMaker's
custom-attributes routing: each wraps the next, and all run before Flask sees the request.
"""
