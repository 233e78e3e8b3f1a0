"""django-prometheus' "after" HTTP middleware, with its labelled series looked up once (spec §13.5).

The same metrics, names and labels as `django_prometheus.middleware`: this subclass only keeps each
labelled child (`Counter.labels(view=…, method=…, status=…)`) in a dictionary after its first use.
prometheus_client builds, validates and looks up the label tuple under a lock on every `labels()` call;
on a small API request the middleware made seven such calls, a measurable share of the request's cost
(issue 11: "/metrics must not become the hot path's cost"). Label values are bounded (views, methods,
statuses, charsets), and prometheus_client keeps every child for the life of the process anyway, so the
dictionary holds no more than the registry does.
"""

from django_prometheus import middleware as django_prometheus


class PrometheusAfterMiddleware(django_prometheus.PrometheusAfterMiddleware):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._children: dict[tuple, object] = {}

    def label_metric(self, metric, request, response=None, **labels):
        if not labels:
            return metric
        key = (id(metric), *labels.items())
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(**labels)
        return child
