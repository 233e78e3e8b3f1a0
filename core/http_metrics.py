"""django-prometheus' HTTP middleware ("before" and "after"), each as one plain call (spec §13.5).

The same metrics, names, labels and values as `django_prometheus.middleware`; what differs is the cost.
Every request Django serves pays these two classes (issue 11: "/metrics must not become the hot path's
cost"), so:

* each labelled child (`Counter.labels(view=…, method=…, status=…)`) is looked up once and kept in a
  dictionary: prometheus_client builds, validates and looks up the label tuple under a lock on every
  `labels()` call, and the middleware made seven such calls per request. Label values are bounded (views,
  methods, statuses, charsets), and prometheus_client keeps every child for the life of the process
  anyway, so the dictionaries hold no more than the registry does;
* a sync request runs through one `__call__` per class (the request's updates, the inner chain, the
  response's updates) instead of `MiddlewareMixin`'s `hasattr` probes and three method calls, and reads
  the method, the transport and the headers once (`request.headers` built a header mapping per request);
* a labelled child is updated through its value (what `inc` and `observe` do once their arguments are
  checked: the amounts here are counts, sizes and durations, never negative), and a histogram finds its
  bucket by bisection;
* the updates themselves are buffered in memory in a gunicorn worker (`core.metrics_export`), and the
  updates each class makes at one point of a request (up to eight) are added under one acquisition of the
  buffer's lock (`add_updates`), not one each.

The async path (`MiddlewareMixin.__acall__`), `process_exception` and `process_template_response` are
django-prometheus' own, with the cached children.
"""

import time
from bisect import bisect_left

from django_prometheus import middleware as django_prometheus

def observation(histogram, amount: float) -> tuple[tuple, tuple]:
    """`Histogram.observe(amount)` of prometheus_client, for a child whose labels are bound, as two value
    updates for `add_updates`: its sum, then the first bucket whose upper bound is at least `amount` (found
    by bisection, not by a loop)."""
    return (histogram._sum, amount), (histogram._buckets[bisect_left(histogram._upper_bounds, amount)], 1)


def add_updates(updates: list) -> None:
    """Apply `(value, amount)` updates of one request: in one step where the values are buffered
    (`core.metrics_export.buffered_value_class`: one lock for all of them), else one `inc` each."""
    inc_many = getattr(type(updates[0][0]), "inc_many", None)
    if inc_many is not None:
        inc_many(updates)
    else:
        for value, amount in updates:
            value.inc(amount)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "OPTIONS", "CONNECT", "PATCH"})
_TRANSPORT_ATTR = "_prometheus_transport"
_VIEW_UPDATE_ATTR = "_prometheus_view_update"  # process_view's count, added with the response's updates


class PrometheusBeforeMiddleware(django_prometheus.PrometheusBeforeMiddleware):
    """Outermost: requests and responses counted, and the latency including every middleware."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        metrics = self.metrics
        self._requests = metrics.requests_total
        self._responses = metrics.responses_total
        self._latency = metrics.requests_latency_before

    def __call__(self, request):
        if self.async_mode:
            return self.__acall__(request)
        self._requests._value.inc(1)
        started = request.prometheus_before_middleware_event = time.perf_counter()
        response = self.get_response(request)  # Django's chain converts exceptions: it returns a response
        add_updates([(self._responses._value, 1), *observation(self._latency, time.perf_counter() - started)])
        return response


class PrometheusAfterMiddleware(django_prometheus.PrometheusAfterMiddleware):
    """Innermost: requests by method, transport, view; responses by status, view, charset; body sizes; the
    latency of the view (django-prometheus' `process_request`, `process_view` and `process_response`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._children: dict[tuple, object] = {}
        self._request_children: dict[tuple, tuple] = {}
        self._response_children: dict[tuple, tuple] = {}

    def label_metric(self, metric, request, response=None, **labels):
        if not labels:
            return metric
        key = (id(metric), *labels.items())
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(**labels)
        return child

    def __call__(self, request):
        if self.async_mode:
            return self.__acall__(request)
        metrics = self.metrics
        meta = request.META
        method = request.method if request.method in _METHODS else "<invalid method>"
        transport = "https" if request.is_secure() else "http"
        setattr(request, _TRANSPORT_ATTR, transport)
        key = (method, transport)
        children = self._request_children.get(key)
        if children is None:
            children = self._request_children[key] = (metrics.requests_by_method.labels(method=method),
                                                      metrics.requests_by_transport.labels(transport=transport))
        add_updates([(children[0]._value, 1), (children[1]._value, 1),
                     *observation(metrics.requests_body_bytes, int(meta.get("CONTENT_LENGTH") or 0))])
        if meta.get("HTTP_X_REQUESTED_WITH") == "XMLHttpRequest":
            metrics.requests_ajax.inc()
        started = request.prometheus_after_middleware_event = time.perf_counter()

        response = self.get_response(request)

        status = str(response.status_code)
        view = self._get_view_name(request)
        # The charset label is `response.charset`, which parses the content type when no charset was
        # given: it is remembered with the pair it derives from.
        content_type = response.headers._store.get("content-type")
        key = (status, view, method, request.method, getattr(response, "_charset", None), content_type)
        children = self._response_children.get(key)
        if children is None:
            charset = str(response.charset) if hasattr(response, "charset") else None
            children = self._response_children[key] = (
                metrics.responses_by_status.labels(status=status),
                metrics.responses_by_status_view_method.labels(status=status, view=view, method=method),
                metrics.responses_by_charset.labels(charset=charset) if charset is not None else None,
                metrics.requests_latency_by_view_method.labels(view=view, method=request.method),
            )
        by_status, by_status_view, by_charset, latency = children
        updates = [(by_status._value, 1), (by_status_view._value, 1),
                   *observation(latency, time.perf_counter() - started)]
        view_update = request.__dict__.pop(_VIEW_UPDATE_ATTR, None)
        if view_update is not None:
            updates.append(view_update)
        if by_charset is not None:
            updates.append((by_charset._value, 1))
        if getattr(response, "streaming", False):
            updates.append((metrics.responses_streaming._value, 1))
        else:  # a streamed answer has no `content` (django-prometheus: `hasattr(response, "content")`)
            updates.extend(observation(metrics.responses_body_bytes, len(response.content)))
        add_updates(updates)
        return response

    def process_view(self, request, view_func, *view_args, **view_kwargs):
        if hasattr(request, "resolver_match"):
            transport = getattr(request, _TRANSPORT_ATTR, None) or self._transport(request)
            child = self.label_metric(self.metrics.requests_by_view_transport_method, request,
                                      view=request.resolver_match.view_name or "<unnamed view>",
                                      transport=transport, method=self._method(request))
            if self.async_mode:
                child.inc()
            else:  # added with the response's updates (__call__)
                request.__dict__[_VIEW_UPDATE_ATTR] = (child._value, 1)
