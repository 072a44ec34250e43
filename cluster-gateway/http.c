/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cluster-gateway: the HTTP endpoints. The server under them (httpd.c)
 * parses each request, enforces the size limits and calls
 * gw_http_handle(); everything here runs on the loop thread.
 *
 *   GET /          307 to the member cluster_pick_target() chooses
 *   GET /target    the same choice as JSON {"id":..., "address":...}
 *   GET /workers   JSON array of the serving members' addresses
 *   GET /members   JSON array of every member and its status
 *   GET /healthz   200 "ok" while the view is current, else 503
 *   GET /metrics   Prometheus text format
 *
 * HEAD is answered as GET (the server leaves the body out). Any other
 * method on these paths is 405 with Allow; any other path is 404; a
 * request the server cannot parse, or one past the size limits, is
 * refused by the server itself (400, 413, 431). Every error is JSON
 * {"error":"..."}.
 *
 * The Location rule (GET /): the member's published address as it is;
 * when that address is http:// or https:// (any case) and has neither a
 * query nor a fragment of its own, the request's query string is carried
 * over ("?" + query, with a "/" before it when the address has no path).
 * The request's path is "/" and stands for the address itself, so nothing
 * of it is appended. Other schemes (ws://, tcp://, ...) get the address
 * only.
 */
#include "gateway.h"

#include <event2/buffer.h>

#include <cJSON.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <syslog.h>

typedef void (*handler_fn)(struct gw *gw, struct gw_http_request *req);

static void reply_oom(struct gw *gw, struct gw_http_request *req);

/* Send body (may be NULL; taken over) as the answer. (The server logs
 * each answer's debug request line.) */
static void
reply(struct gw *gw, struct gw_http_request *req, int code, const char *content_type, struct evbuffer *body)
{
	size_t len = body ? evbuffer_get_length(body) : 0;
	const unsigned char *data = len ? evbuffer_pullup(body, -1) : NULL;

	if(len && !data)
	{
		evbuffer_free(body);
		reply_oom(gw, req);
		return;
	}
	gw_http_respond(req, code, content_type, (const char *) data, len);
	if(body)
	{
		evbuffer_free(body);
	}
}

/* Last resort when the answer itself cannot be built (no memory). */
static void
reply_oom(struct gw *gw, struct gw_http_request *req)
{
	(void) gw;
	gw_http_respond(req, 500, "application/json", "{\"error\":\"out of memory\"}", 25);
}

/* Send doc as the body (takes it over). */
static void
reply_json(struct gw *gw, struct gw_http_request *req, int code, cJSON *doc)
{
	struct evbuffer *body;
	char *text;

	text = doc ? cJSON_PrintUnformatted(doc) : NULL;
	cJSON_Delete(doc);
	body = text ? evbuffer_new() : NULL;
	if(!body || evbuffer_add(body, text, strlen(text)))
	{
		if(body)
		{
			evbuffer_free(body);
		}
		free(text);
		reply_oom(gw, req);
		return;
	}
	free(text);
	reply(gw, req, code, "application/json", body);
}

/* {"error": message}: what went wrong, in words a client can show. */
static void __attribute__((format(printf, 4, 5)))
reply_error(struct gw *gw, struct gw_http_request *req, int code, const char *format, ...)
{
	char message[512];
	cJSON *doc;
	va_list ap;

	va_start(ap, format);
	vsnprintf(message, sizeof(message), format, ap);
	va_end(ap);
	doc = cJSON_CreateObject();
	if(doc && !cJSON_AddStringToObject(doc, "error", message))
	{
		cJSON_Delete(doc);
		doc = NULL;
	}
	reply_json(gw, req, code, doc);
}

/* The library's choice for a new client, counted; answers 503 itself
 * when there is none. 0 with *target set, or -1 (answered). */
static int
pick(struct gw *gw, struct gw_http_request *req, CLUSTERMEMBER *target)
{
	if(gw->join_pending)
	{
		reply_error(gw, req, 503, "not joined to the cluster yet: no member is known");
		return -1;
	}
	if(cluster_pick_target(gw->cluster, target))
	{
		if(errno == ENOENT)
		{
			gw->no_target++;
			reply_error(gw, req, 503, "no member can take a client now (none, or all draining, full or stale)");
		}
		else if(errno == EPERM)
		{
			reply_error(gw, req, 503, "not joined to the cluster yet (or leaving it)");
		}
		else
		{
			reply_error(gw, req, 503, "cannot pick a member: %s", strerror(errno));
		}
		return -1;
	}
	gw_view_count_pick(&gw->view, target->id);
	if(!target->address[0])
	{
		reply_error(gw, req, 503, "member '%s' was chosen but has published no address", target->id);
		return -1;
	}
	return 0;
}

static int
is_http_address(const char *address)
{
	return !strncasecmp(address, "http://", 7) || !strncasecmp(address, "https://", 8);
}

/* The Location for address (the rule at the top of this file), on the
 * heap; NULL when out of memory. */
static char *
location_for(const char *address, const char *query)
{
	const char *authority;
	size_t alen = strlen(address), qlen = query ? strlen(query) : 0;
	int slash;
	char *out;

	if(!qlen || !is_http_address(address) || strpbrk(address, "?#"))
	{
		return strdup(address);
	}
	authority = strstr(address, "://") + 3;
	slash = strchr(authority, '/') == NULL;
	out = malloc(alen + (size_t) slash + 1 + qlen + 1);
	if(out)
	{
		snprintf(out, alen + (size_t) slash + 1 + qlen + 1, "%s%s?%s", address, slash ? "/" : "", query);
	}
	return out;
}

/* A query we copy into a header must be plain URL text. The parser
 * accepts some non-conforming bytes in a request target (bytes over
 * 0x7f); those are refused here. */
static int
query_ok(const char *query)
{
	const unsigned char *p;

	for(p = (const unsigned char *) query; p && *p; p++)
	{
		if(*p <= 0x20 || *p >= 0x7f)
		{
			return 0;
		}
	}
	return 1;
}

/* s as a JSON string at out (room for 6 bytes per byte of s, plus 2):
 * quotes and backslashes escaped, control bytes as \u00XX, other bytes
 * as they are (as cJSON prints them). Returns the bytes written. */
static size_t
json_string(char *out, const char *s)
{
	char *o = out;

	*o++ = '"';
	for(; *s; s++)
	{
		unsigned char c = (unsigned char) *s;

		if(c >= 0x20 && c != '"' && c != '\\')
		{
			*o++ = (char) c;
		}
		else if(c == '"' || c == '\\')
		{
			*o++ = '\\';
			*o++ = (char) c;
		}
		else
		{
			o += sprintf(o, "\\u%04x", c);
		}
	}
	*o++ = '"';
	return (size_t) (o - out);
}

/* Send {"id":..,"address":..} naming the picked member (GET /target, and
 * the body of GET /'s redirect for clients that read it). Written into
 * a buffer on the stack: this is every redirect's body, and a cJSON tree
 * for two strings is several allocations built, printed and freed per
 * request. */
static void
reply_target(struct gw *gw, struct gw_http_request *req, int code, const CLUSTERMEMBER *target)
{
	char body[6 * (CLUSTER_NAME_MAX + CLUSTER_ADDRESS_MAX) + 32];
	size_t n = 0;

	memcpy(body, "{\"id\":", 6);
	n = 6;
	n += json_string(body + n, target->id);
	memcpy(body + n, ",\"address\":", 11);
	n += 11;
	n += json_string(body + n, target->address);
	body[n++] = '}';
	gw_http_respond(req, code, "application/json", body, n);
}

static void
serve_redirect(struct gw *gw, struct gw_http_request *req)
{
	const char *query = req->query;
	CLUSTERMEMBER target;
	char *location;

	if(!query_ok(query))
	{
		reply_error(gw, req, 400, "the query string has a byte that is not allowed in a URL (control, space or non-ASCII)");
		return;
	}
	if(pick(gw, req, &target))
	{
		return;
	}
	location = location_for(target.address, query);
	if(!location)
	{
		reply_oom(gw, req);
		return;
	}
	gw->redirects++;
	req->location = location;
	reply_target(gw, req, 307, &target);
	free(location);
}

static void
serve_target(struct gw *gw, struct gw_http_request *req)
{
	CLUSTERMEMBER target;

	if(pick(gw, req, &target))
	{
		return;
	}
	gw->targets++;
	reply_target(gw, req, 200, &target);
}

/* Serving: registered (not passive), reachable (an address) and taking
 * clients (capacity not 0, i.e. not draining). */
static int
serving(const CLUSTERMEMBER *m)
{
	return !m->passive && m->has_status && m->address[0] && m->capacity != 0;
}

static void
serve_workers(struct gw *gw, struct gw_http_request *req)
{
	const struct gw_snapshot *snap = gw->view.current;
	cJSON *doc = cJSON_CreateArray();
	size_t i;

	for(i = 0; doc && i < snap->count; i++)
	{
		cJSON *s;

		if(!serving(&snap->members[i]))
		{
			continue;
		}
		s = cJSON_CreateString(snap->members[i].address);
		if(!s || !cJSON_AddItemToArray(doc, s))
		{
			cJSON_Delete(s);
			cJSON_Delete(doc);
			doc = NULL;
		}
	}
	reply_json(gw, req, 200, doc);
}

/* One member as /members shows it; NULL when out of memory. */
static cJSON *
member_json(const CLUSTERMEMBER *m, unsigned long long picks, long long since_ms, long long stale_ms)
{
	cJSON *o = cJSON_CreateObject();

	if(!o ||
		!cJSON_AddStringToObject(o, "id", m->id) ||
		!cJSON_AddNumberToObject(o, "workers", m->workers) ||
		!cJSON_AddNumberToObject(o, "base", m->base) ||
		!cJSON_AddBoolToObject(o, "passive", m->passive) ||
		!cJSON_AddBoolToObject(o, "has_status", m->has_status) ||
		!cJSON_AddStringToObject(o, "address", m->address) ||
		!cJSON_AddNumberToObject(o, "load", (double) m->load) ||
		!cJSON_AddNumberToObject(o, "capacity", (double) m->capacity) ||
		!cJSON_AddBoolToObject(o, "draining", m->has_status && m->capacity == 0) ||
		!cJSON_AddBoolToObject(o, "serving", serving(m)) ||
		!cJSON_AddNumberToObject(o, "age_ms", (double) (m->age_ms + since_ms)) ||
		!cJSON_AddBoolToObject(o, "stale", m->has_status && stale_ms > 0 && m->age_ms + since_ms > stale_ms) ||
		!cJSON_AddNumberToObject(o, "picks", (double) picks))
	{
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static void
serve_members(struct gw *gw, struct gw_http_request *req)
{
	const struct gw_snapshot *snap = gw->view.current;
	long long since = gw_now_ms() - snap->taken_ms;
	cJSON *doc = cJSON_CreateArray();
	size_t i;

	for(i = 0; doc && i < snap->count; i++)
	{
		cJSON *o = member_json(&snap->members[i], snap->picks[i], since, gw->stale_ms);

		if(!o || !cJSON_AddItemToArray(doc, o))
		{
			cJSON_Delete(o);
			cJSON_Delete(doc);
			doc = NULL;
		}
	}
	reply_json(gw, req, 200, doc);
}

/* GET /plan: the library's global plan as this gateway computes it
 * (cluster_plan(): a getter, no network). */
static void
serve_plan(struct gw *gw, struct gw_http_request *req)
{
	CLUSTERPLANENTRY *e = NULL;
	size_t n = 0, i;
	cJSON *doc;

	if(gw->join_pending || cluster_plan(gw->cluster, &e, &n))
	{
		reply_error(gw, req, 503, "no plan: %s", gw->join_pending ? "not joined to the cluster yet" : strerror(errno));
		return;
	}
	doc = cJSON_CreateArray();
	for(i = 0; doc && i < n; i++)
	{
		cJSON *o = cJSON_CreateObject();

		if(!o || !cJSON_AddStringToObject(o, "id", e[i].id) || !cJSON_AddBoolToObject(o, "member", e[i].member) ||
			!cJSON_AddBoolToObject(o, "draining", e[i].draining) || !cJSON_AddNumberToObject(o, "share", (double) e[i].share) ||
			!cJSON_AddNumberToObject(o, "load", (double) e[i].load) || !cJSON_AddNumberToObject(o, "shed", (double) e[i].shed) ||
			!cJSON_AddNumberToObject(o, "inflow", (double) e[i].inflow) || !cJSON_AddItemToArray(doc, o))
		{
			cJSON_Delete(o);
			cJSON_Delete(doc);
			doc = NULL;
		}
	}
	cluster_plan_free(e);
	reply_json(gw, req, 200, doc);
}

/* GET /status: the operators' page (status.html, built in). It draws
 * itself from /members, /plan and /metrics. */
static void
serve_status(struct gw *gw, struct gw_http_request *req)
{
	struct evbuffer *b = evbuffer_new();

	if(!b || evbuffer_add_reference(b, gw_status_html, strlen(gw_status_html), NULL, NULL))
	{
		if(b)
		{
			evbuffer_free(b);
		}
		reply_oom(gw, req);
		return;
	}
	reply(gw, req, 200, "text/html; charset=utf-8", b);
}

static void
serve_healthz(struct gw *gw, struct gw_http_request *req)
{
	struct evbuffer *body;

	if(gw->join_pending)
	{
		reply_error(gw, req, 503, "not joined to the cluster yet");
		return;
	}
	if(cluster_view_fresh(gw->cluster, NULL) != 1)
	{
		reply_error(gw, req, 503, "the view of the cluster may be stale (registry unreachable or watch interrupted)");
		return;
	}
	body = evbuffer_new();
	if(!body || evbuffer_add(body, "ok\n", 3))
	{
		if(body)
		{
			evbuffer_free(body);
		}
		reply_oom(gw, req);
		return;
	}
	reply(gw, req, 200, "text/plain; charset=utf-8", body);
}

/* A label value in the exposition format: backslash, quote and newline
 * escaped. (Ids are plain names, but the format is kept whatever they
 * hold.) */
static int
add_label_value(struct evbuffer *b, const char *s)
{
	int r = 0;

	for(; *s && !r; s++)
	{
		if(*s == '\\' || *s == '"')
		{
			r = evbuffer_add_printf(b, "\\%c", *s) < 0;
		}
		else if(*s == '\n')
		{
			r = evbuffer_add(b, "\\n", 2);
		}
		else
		{
			r = evbuffer_add(b, s, 1);
		}
	}
	return r ? -1 : 0;
}

int
gw_add_metric(struct evbuffer *b, const char *name, const char *type, const char *help, double value)
{
	return evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, value) < 0 ? -1 : 0;
}

static void
serve_metrics(struct gw *gw, struct gw_http_request *req)
{
	const struct gw_snapshot *snap = gw->view.current;
	struct evbuffer *b = evbuffer_new();
	long long now = gw_now_ms();
	size_t i, serving_count = 0;
	int fresh, r;

	fresh = cluster_view_fresh(gw->cluster, NULL) == 1;
	if(fresh)
	{
		gw->last_fresh_ms = now;
	}
	for(i = 0; i < snap->count; i++)
	{
		serving_count += serving(&snap->members[i]) ? 1 : 0;
	}
	r = !b;
	r = r || gw_add_metric(b, "cluster_gateway_members", "gauge", "Members in the gateway's view of the cluster.", (double) snap->count);
	r = r || gw_add_metric(b, "cluster_gateway_serving_members", "gauge", "Members with an address that take clients (capacity not 0).", (double) serving_count);
	r = r || gw_add_metric(b, "cluster_gateway_requests_total", "counter", "HTTP requests answered by the gateway's handlers.", (double) gw->requests);
	r = r || gw_add_metric(b, "cluster_gateway_redirects_total", "counter", "Redirects (307) sent by GET /.", (double) gw->redirects);
	r = r || gw_add_metric(b, "cluster_gateway_targets_total", "counter", "Targets answered by GET /target.", (double) gw->targets);
	r = r || gw_add_metric(b, "cluster_gateway_no_target_total", "counter", "Picks that found no member able to take a client (503).", (double) gw->no_target);
	r = r || gw_add_metric(b, "cluster_gateway_errors_total", "counter", "Answers with a status of 400 or more, refusals of malformed or oversized requests included.", (double) gw->errors);
	r = r || gw_add_metric(b, "cluster_gateway_view_fresh", "gauge", "1 while the view of the cluster is known to be current.", fresh);
	r = r || gw_add_metric(b, "cluster_gateway_view_age_seconds", "gauge", "Seconds since the view was last known to be current (0 while it is).",
				 (double) (now - gw->last_fresh_ms) / 1000.0);
	r = r || gw_add_metric(b, "cluster_gateway_picks_unlisted_total", "counter", "Picks of members not yet in the gateway's member list.",
				 (double) gw->view.picks_unlisted);
	r = r || gw_tcp_metrics(gw, b);
	r = r || gw_add_metric(b, "cluster_gateway_registered_workers", "gauge", "Workers registered through POST /register-worker now.", (double) gw->reg_count);
	r = r || gw_add_metric(b, "cluster_gateway_registrations_total", "counter", "New registrations accepted (202).", (double) gw->reg_accepted);
	r = r || gw_add_metric(b, "cluster_gateway_registration_renewals_total", "counter", "Registrations renewed (200).", (double) gw->reg_renewed);
	r = r || gw_add_metric(b, "cluster_gateway_registrations_refused_total", "counter", "Registrations refused (400, 503).", (double) gw->reg_refused);
	r = r || gw_add_metric(b, "cluster_gateway_registrations_expired_total", "counter", "Registrations ended because the worker did not post again in time.",
				 (double) gw->reg_expired);
	r = r || evbuffer_add_printf(b, "# HELP cluster_gateway_picks_total Picks per member (GET / and GET /target), while the member is listed.\n"
									"# TYPE cluster_gateway_picks_total counter\n") < 0;
	for(i = 0; !r && i < snap->count; i++)
	{
		r = evbuffer_add_printf(b, "cluster_gateway_picks_total{id=\"") < 0 ||
			add_label_value(b, snap->members[i].id) ||
			evbuffer_add_printf(b, "\"} %llu\n", snap->picks[i]) < 0;
	}
	if(r)
	{
		if(b)
		{
			evbuffer_free(b);
		}
		reply_oom(gw, req);
		return;
	}
	reply(gw, req, 200, "text/plain; version=0.0.4; charset=utf-8", b);
}

/* POST /register-worker: the body is the registration (register.c). */
static void
serve_register(struct gw *gw, struct gw_http_request *req)
{
	cJSON *doc;
	int code;

	if(gw->join_pending)
	{
		reply_error(gw, req, 503, "not joined to the cluster yet: try again");
		return;
	}
	doc = gw_register(gw, req->body, req->body_len, &code);
	reply_json(gw, req, code, doc);
}

/* post: the route takes POST only; else GET and HEAD. */
static const struct route
{
	const char *path;
	handler_fn fn;
	int post;
} routes[] = {
	{ "/", serve_redirect, 0 },
	{ "/target", serve_target, 0 },
	{ "/workers", serve_workers, 0 },
	{ "/members", serve_members, 0 },
	{ "/healthz", serve_healthz, 0 },
	{ "/metrics", serve_metrics, 0 },
	{ "/plan", serve_plan, 0 },
	{ "/status", serve_status, 0 },
	{ "/register-worker", serve_register, 1 },
};

/* Route by exact path, then check the method. */
void
gw_http_handle(struct gw *gw, struct gw_http_request *req)
{
	char shown[4 * 100 + 4];
	const char *path = req->path;
	size_t i;

	gw->requests++;
	if(!path)
	{
		reply_error(gw, req, 400, "the request target is not a URL");
		return;
	}
	/* an absolute-form target ("http://host") has an empty path: "/" */
	if(!path[0])
	{
		path = "/";
	}
	for(i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
	{
		if(!strcmp(path, routes[i].path))
		{
			break;
		}
	}
	if(i == sizeof(routes) / sizeof(routes[0]))
	{
		reply_error(gw, req, 404, "no such resource: '%s' (try /, /target, /workers, /members, /healthz, /metrics, /plan, /status, /register-worker)",
			cli_escape(shown, sizeof(shown), path));
		return;
	}
	if(routes[i].post && req->method != GW_HTTP_POST)
	{
		req->allow = "POST";
		reply_error(gw, req, 405, "method %s is not allowed on %s (only POST)", req->method_name, routes[i].path);
		return;
	}
	if(!routes[i].post && req->method != GW_HTTP_GET && req->method != GW_HTTP_HEAD)
	{
		req->allow = "GET, HEAD";
		reply_error(gw, req, 405, "method %s is not allowed on %s (only GET and HEAD)", req->method_name, routes[i].path);
		return;
	}
	routes[i].fn(gw, req);
}
