/* SPDX-License-Identifier: Apache-2.0 */
/*
 * etcd test harness, HTTP client (see etcdharness.h): a small libcurl +
 * cJSON client for etcd's v3 JSON gateway (put, get, count, delete,
 * leases, compaction, cluster status, metrics) and its auth (root login,
 * users and roles). Nothing from libcluster, so a broken library cannot
 * make the harness lie.
 */
#ifndef _GNU_SOURCE
# define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <cjson/cJSON.h>

#include "etcdharness-private.h"

/* ------------------------------------------------------------------ */
/* HTTP                                                                 */
/* ------------------------------------------------------------------ */

struct etcdh__buf
{
	char *data;
	size_t len;
};

static size_t
etcdh__write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct etcdh__buf *b = userdata;
	size_t n = size * nmemb;
	char *p = realloc(b->data, b->len + n + 1);

	if(!p)
	{
		return 0;
	}
	memcpy(p + b->len, ptr, n);
	b->len += n;
	p[b->len] = '\0';
	b->data = p;
	return n;
}

static pthread_once_t etcdh__curl_once = PTHREAD_ONCE_INIT;

/* The harness's own TLS files for https:// etcds (etcdh_use_pki()): set
 * from the main thread before anything else talks to etcd. */
static char etcdh__ca[PATH_MAX + 16], etcdh__cert[PATH_MAX + 16], etcdh__key[PATH_MAX + 16];

static void
etcdh__curl_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* One request on a fresh handle: method (NULL: POST body, or GET when
 * body is NULL) to url, with an Authorization header when token is not
 * NULL or "". Every request of the harness and of the tests' raw calls
 * goes through here. Returns the HTTP status (0 on a transport error) and
 * hands the reply body to *out (malloc'd, may be NULL). */
static long
etcdh__request(const char *method, const char *url, const char *body, long timeout_ms, const char *token, char **out)
{
	CURL *curl;
	struct etcdh__buf b = { NULL, 0 };
	struct curl_slist *headers = NULL;
	char auth[ETCDH_TOKEN_MAX + 32];
	long status = 0;
	CURLcode rc;

	pthread_once(&etcdh__curl_once, etcdh__curl_init);
	if(out)
	{
		*out = NULL;
	}
	curl = curl_easy_init();
	if(!curl)
	{
		return 0;
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	if(method)
	{
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	}
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, etcdh__write_cb);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
	if(body)
	{
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	}
	if(!strncmp(url, "https:", 6) && etcdh__ca[0])
	{
		curl_easy_setopt(curl, CURLOPT_CAINFO, etcdh__ca);
		curl_easy_setopt(curl, CURLOPT_SSLCERT, etcdh__cert);
		curl_easy_setopt(curl, CURLOPT_SSLKEY, etcdh__key);
	}
	if(token && *token)
	{
		/* the raw token: "Bearer ..." is refused by etcd */
		snprintf(auth, sizeof(auth), "Authorization: %s", token);
		headers = curl_slist_append(NULL, auth);
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	}
	rc = curl_easy_perform(curl);
	if(rc == CURLE_OK)
	{
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	}
	curl_easy_cleanup(curl);
	curl_slist_free_all(headers);
	if(out)
	{
		*out = b.data;
	}
	else
	{
		free(b.data);
	}
	return status;
}

/* A v3 call or probe of the harness's own: base + path, POST or GET. */
long
etcdh__http(const char *base, const char *path, const char *body, long timeout_ms, const char *token, char **out)
{
	char url[256];

	snprintf(url, sizeof(url), "%s%s", base, path);
	return etcdh__request(NULL, url, body, timeout_ms, token, out);
}

void
etcdh_use_pki(const char *dir)
{
	snprintf(etcdh__ca, sizeof(etcdh__ca), "%s/ca.crt", dir);
	snprintf(etcdh__cert, sizeof(etcdh__cert), "%s/client.crt", dir);
	snprintf(etcdh__key, sizeof(etcdh__key), "%s/client.key", dir);
}

long
etcdh_request(const char *method, const char *url, const char *body, long timeout_ms, char **out)
{
	return etcdh__request(method, url, body, timeout_ms, NULL, out);
}

/*
 * Log in as root (when auth was turned on through the harness) and keep
 * the token in the handle. An etcd without auth says so: no token is
 * needed then. 0 or -1.
 */
static int
etcdh__login(etcdh *h)
{
	cJSON *body = cJSON_CreateObject(), *r = NULL, *tok;
	char *text = NULL, *reply = NULL;
	long status = 0;
	int rc = -1;

	h->token[0] = '\0';
	if(body)
	{
		cJSON_AddStringToObject(body, "name", "root");
		cJSON_AddStringToObject(body, "password", h->root_password);
		text = cJSON_PrintUnformatted(body);
	}
	if(text)
	{
		status = etcdh__http(h->base, "/v3/auth/authenticate", text, ETCDH_HTTP_TIMEOUT_MS, NULL, &reply);
	}
	if(status == 200 && reply)
	{
		r = cJSON_Parse(reply);
		tok = cJSON_GetObjectItemCaseSensitive(r, "token");
		if(cJSON_IsString(tok) && tok->valuestring && strlen(tok->valuestring) < sizeof(h->token))
		{
			snprintf(h->token, sizeof(h->token), "%s", tok->valuestring);
			rc = 0;
		}
	}
	else if(reply && strstr(reply, "authentication is not enabled"))
	{
		rc = 0;
	}
	if(rc)
	{
		etcdh__err("authenticate as root: HTTP %ld %s", status, reply ? reply : "(no reply)");
	}
	cJSON_Delete(r);
	cJSON_Delete(body);
	free(text);
	free(reply);
	return rc;
}

/* A reply that asks for a (new) token: expired (401) or none (400). */
static int
etcdh__wants_login(long status, const char *reply)
{
	return status == 401 || (status == 400 && reply && strstr(reply, "user name is empty"));
}

/*
 * POST a v3 call and parse the JSON reply; NULL unless HTTP 200. With auth
 * on, the call carries root's token, and an expired token (simple tokens
 * die after --auth-token-ttl idle seconds) is renewed once.
 */
cJSON *
etcdh__call(etcdh *h, const char *path, const char *body)
{
	char *reply = NULL;
	long status = 0;
	cJSON *json;
	int attempt;

	for(attempt = 0; attempt < 2; attempt++)
	{
		if(h->root_password && !h->token[0] && etcdh__login(h))
		{
			return NULL;
		}
		status = etcdh__http(h->base, path, body, ETCDH_HTTP_TIMEOUT_MS, h->token, &reply);
		if(attempt > 0 || !h->root_password || !etcdh__wants_login(status, reply))
		{
			break;
		}
		h->token[0] = '\0';
		free(reply);
		reply = NULL;
	}
	if(status != 200 || !reply)
	{
		etcdh__err("%s: HTTP %ld %s", path, status, reply ? reply : "(no reply)");
		free(reply);
		return NULL;
	}
	json = cJSON_ParseWithLength(reply, strlen(reply));
	if(!json)
	{
		etcdh__err("%s: unparsable reply %s", path, reply);
	}
	free(reply);
	return json;
}

/* POST text (NULL: out of memory) to path when only success matters:
 * 0 if etcd answered 200, else -1. */
static int
etcdh__post_text(etcdh *h, const char *path, const char *text)
{
	cJSON *r = text ? etcdh__call(h, path, text) : NULL;

	if(!r)
	{
		return -1;
	}
	cJSON_Delete(r);
	return 0;
}

/* The same with a cJSON body (NULL: out of memory), deleted here. */
static int
etcdh__post(etcdh *h, const char *path, cJSON *body)
{
	char *text = body ? cJSON_PrintUnformatted(body) : NULL;
	int rc = etcdh__post_text(h, path, text);

	free(text);
	cJSON_Delete(body);
	return rc;
}

/* ------------------------------------------------------------------ */
/* base64 (standard alphabet, padded: what the v3 gateway insists on)   */
/* ------------------------------------------------------------------ */

static const char etcdh__b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *
etcdh__b64enc(const unsigned char *in, size_t len)
{
	char *out = malloc(((len + 2) / 3) * 4 + 1), *o = out;
	size_t i;
	unsigned v;

	if(!out)
	{
		return NULL;
	}
	for(i = 0; i + 2 < len; i += 3)
	{
		v = (unsigned) in[i] << 16 | (unsigned) in[i + 1] << 8 | in[i + 2];
		*o++ = etcdh__b64[v >> 18];
		*o++ = etcdh__b64[(v >> 12) & 63];
		*o++ = etcdh__b64[(v >> 6) & 63];
		*o++ = etcdh__b64[v & 63];
	}
	if(i < len)
	{
		v = (unsigned) in[i] << 16 | (i + 1 < len ? (unsigned) in[i + 1] << 8 : 0);
		*o++ = etcdh__b64[v >> 18];
		*o++ = etcdh__b64[(v >> 12) & 63];
		*o++ = i + 1 < len ? etcdh__b64[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

static char *
etcdh__b64dec(const char *in)
{
	size_t len = strlen(in), n = 0, i;
	char *out = malloc(len / 4 * 3 + 4);
	unsigned v = 0;
	int bits = 0;
	const char *p;

	if(!out)
	{
		return NULL;
	}
	for(i = 0; i < len && in[i] != '='; i++)
	{
		p = strchr(etcdh__b64, in[i]);
		if(!p || !*p)
		{
			free(out);
			return NULL;
		}
		v = (v << 6) | (unsigned) (p - etcdh__b64);
		bits += 6;
		if(bits >= 8)
		{
			bits -= 8;
			out[n++] = (char) ((v >> bits) & 0xff);
		}
	}
	out[n] = '\0';
	return out;
}

/* range_end for a prefix: last byte below 0xff incremented, the rest cut. */
static char *
etcdh__prefix_end_b64(const char *prefix)
{
	size_t len = strlen(prefix);
	unsigned char end[512];
	size_t i;

	if(len == 0 || len >= sizeof(end))
	{
		end[0] = 0;
		return etcdh__b64enc(end, 1);
	}
	memcpy(end, prefix, len);
	for(i = len; i-- > 0;)
	{
		if(end[i] < 0xff)
		{
			end[i]++;
			return etcdh__b64enc(end, i + 1);
		}
	}
	end[0] = 0;
	return etcdh__b64enc(end, 1);
}

/* int64 fields come back as JSON strings (or are omitted when zero). */
static long long
etcdh__int(const cJSON *obj, const char *name)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

	if(cJSON_IsString(item) && item->valuestring)
	{
		return strtoll(item->valuestring, NULL, 10);
	}
	if(cJSON_IsNumber(item))
	{
		return (long long) item->valuedouble;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Raw v3 operations                                                    */
/* ------------------------------------------------------------------ */

/* Member IDs are uint64 and sent as strings: too big for etcdh__int(). */
static unsigned long long
etcdh__u64(const cJSON *obj, const char *name)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

	if(cJSON_IsString(item) && item->valuestring)
	{
		return strtoull(item->valuestring, NULL, 10);
	}
	return 0;
}

int
etcdh_cluster_leader(etcdh_cluster *cl)
{
	unsigned long long id[ETCDH_CLUSTER_MAX], leader = 0;
	cJSON *r;
	int i;

	for(i = 0; i < cl->n; i++)
	{
		id[i] = 0;
		/* a stopped or frozen member cannot answer: do not wait for it */
		if(!cl->m[i]->pid || cl->m[i]->paused)
		{
			continue;
		}
		r = etcdh__call(cl->m[i], "/v3/maintenance/status", "{}");
		if(!r)
		{
			continue;
		}
		id[i] = etcdh__u64(cJSON_GetObjectItemCaseSensitive(r, "header"), "member_id");
		if(!leader)
		{
			leader = etcdh__u64(r, "leader");
		}
		cJSON_Delete(r);
	}
	for(i = 0; i < cl->n && leader; i++)
	{
		if(id[i] == leader)
		{
			return i;
		}
	}
	return -1;
}


long long
etcdh_revision(etcdh *h)
{
	cJSON *r = etcdh__call(h, "/v3/kv/range", "{\"key\":\"AA==\"}");
	long long rev;

	if(!r)
	{
		return -1;
	}
	rev = etcdh__int(cJSON_GetObjectItemCaseSensitive(r, "header"), "revision");
	cJSON_Delete(r);
	return rev > 0 ? rev : -1;
}

int
etcdh_compact(etcdh *h)
{
	long long rev = etcdh_revision(h);
	char body[128];

	if(rev < 0)
	{
		return -1;
	}
	snprintf(body, sizeof(body), "{\"revision\":\"%lld\",\"physical\":true}", rev);
	return etcdh__post_text(h, "/v3/kv/compaction", body);
}

int
etcdh_put(etcdh *h, const char *key, const char *value)
{
	char *k = etcdh__b64enc((const unsigned char *) key, strlen(key));
	char *v = etcdh__b64enc((const unsigned char *) value, strlen(value));
	cJSON *body = k && v ? cJSON_CreateObject() : NULL;

	if(body)
	{
		cJSON_AddStringToObject(body, "key", k);
		cJSON_AddStringToObject(body, "value", v);
	}
	free(k);
	free(v);
	return etcdh__post(h, "/v3/kv/put", body);
}

/* Range over key (or the prefix when prefix is set); returns the reply. */
static cJSON *
etcdh__range(etcdh *h, const char *key, int prefix, int count_only)
{
	char *k = etcdh__b64enc((const unsigned char *) key, strlen(key));
	char *e = prefix ? etcdh__prefix_end_b64(key) : NULL;
	cJSON *body = cJSON_CreateObject(), *r = NULL;
	char *text = NULL;

	if(k && body && (!prefix || e))
	{
		cJSON_AddStringToObject(body, "key", k);
		if(e)
		{
			cJSON_AddStringToObject(body, "range_end", e);
		}
		if(count_only)
		{
			cJSON_AddBoolToObject(body, "count_only", 1);
		}
		text = cJSON_PrintUnformatted(body);
	}
	if(text)
	{
		r = etcdh__call(h, "/v3/kv/range", text);
	}
	free(k);
	free(e);
	free(text);
	cJSON_Delete(body);
	return r;
}

int
etcdh_get(etcdh *h, const char *key, char **value)
{
	cJSON *r = etcdh__range(h, key, 0, 0), *kvs, *kv, *v;
	int found = 0;

	if(value)
	{
		*value = NULL;
	}
	if(!r)
	{
		return -1;
	}
	kvs = cJSON_GetObjectItemCaseSensitive(r, "kvs");
	kv = cJSON_IsArray(kvs) ? cJSON_GetArrayItem(kvs, 0) : NULL;
	if(kv)
	{
		found = 1;
		if(value)
		{
			v = cJSON_GetObjectItemCaseSensitive(kv, "value");
			*value = cJSON_IsString(v) ? etcdh__b64dec(v->valuestring) : strdup("");
		}
	}
	cJSON_Delete(r);
	return found;
}

long long
etcdh_key_lease(etcdh *h, const char *key)
{
	cJSON *r = etcdh__range(h, key, 0, 0), *kvs, *kv;
	long long lease = 0;

	if(!r)
	{
		return -1;
	}
	kvs = cJSON_GetObjectItemCaseSensitive(r, "kvs");
	kv = cJSON_IsArray(kvs) ? cJSON_GetArrayItem(kvs, 0) : NULL;
	if(kv)
	{
		lease = etcdh__int(kv, "lease");
	}
	cJSON_Delete(r);
	return lease;
}

long long
etcdh_count(etcdh *h, const char *prefix)
{
	cJSON *r = etcdh__range(h, prefix, 1, 1);
	long long n;

	if(!r)
	{
		return -1;
	}
	n = etcdh__int(r, "count");
	cJSON_Delete(r);
	return n;
}

int
etcdh_delete(etcdh *h, const char *key)
{
	char *k = etcdh__b64enc((const unsigned char *) key, strlen(key));
	char body[1024];
	cJSON *r;
	int n;

	if(!k || strlen(k) > 900)
	{
		free(k);
		return -1;
	}
	snprintf(body, sizeof(body), "{\"key\":\"%s\"}", k);
	free(k);
	r = etcdh__call(h, "/v3/kv/deleterange", body);
	if(!r)
	{
		return -1;
	}
	n = (int) etcdh__int(r, "deleted");
	cJSON_Delete(r);
	return n;
}

int
etcdh_revoke(etcdh *h, long long lease)
{
	char body[128];
	cJSON *r;

	snprintf(body, sizeof(body), "{\"ID\":\"%lld\"}", lease);
	r = etcdh__call(h, "/v3/lease/revoke", body);
	if(!r)
	{
		return -1;
	}
	cJSON_Delete(r);
	return 0;
}

int
etcdh_revoke_all(etcdh *h)
{
	cJSON *r = etcdh__call(h, "/v3/lease/leases", "{}"), *leases, *l, *rr;
	char body[128];
	int n = 0;

	if(!r)
	{
		return -1;
	}
	leases = cJSON_GetObjectItemCaseSensitive(r, "leases");
	cJSON_ArrayForEach(l, leases)
	{
		snprintf(body, sizeof(body), "{\"ID\":\"%lld\"}", etcdh__int(l, "ID"));
		rr = etcdh__call(h, "/v3/lease/revoke", body);
		if(rr)
		{
			n++;
			cJSON_Delete(rr);
		}
	}
	cJSON_Delete(r);
	return n;
}

/* ------------------------------------------------------------------ */
/* v3 authentication                                                    */
/* ------------------------------------------------------------------ */

/* From now on the handle (and every member of its cluster, which share
 * one auth store) authenticates as root. */
static int
etcdh__set_root(etcdh *h, const char *root_password)
{
	etcdh *m;
	int i, n = h->cluster ? h->cluster->n : 1;

	for(i = 0; i < n; i++)
	{
		m = h->cluster ? h->cluster->m[i] : h;
		free(m->root_password);
		m->root_password = strdup(root_password);
		m->token[0] = '\0';
		if(!m->root_password)
		{
			return -1;
		}
	}
	return 0;
}

/* {"<k1>":"<v1>","<k2>":"<v2>"}: what most auth calls take. */
static cJSON *
etcdh__pair(const char *k1, const char *v1, const char *k2, const char *v2)
{
	cJSON *o = cJSON_CreateObject();

	if(o)
	{
		cJSON_AddStringToObject(o, k1, v1);
		if(k2)
		{
			cJSON_AddStringToObject(o, k2, v2);
		}
	}
	return o;
}

int
etcdh_enable_auth(etcdh *h, const char *root_password)
{
	if(etcdh__post(h, "/v3/auth/user/add", etcdh__pair("name", "root", "password", root_password)) ||
		etcdh__post(h, "/v3/auth/role/add", etcdh__pair("name", "root", NULL, NULL)) ||
		etcdh__post(h, "/v3/auth/user/grant", etcdh__pair("user", "root", "role", "root")) ||
		etcdh__post(h, "/v3/auth/enable", cJSON_CreateObject()) ||
		etcdh__set_root(h, root_password))
	{
		return -1;
	}
	return etcdh__login(h);
}

int
etcdh_add_user(etcdh *h, const char *root_password, const char *user, const char *password, const char *prefix)
{
	char *k, *e;
	cJSON *grant, *perm;
	int rc = -1;

	/* an etcd whose auth was turned on elsewhere: learn root's password */
	if(root_password && !h->root_password && etcdh__set_root(h, root_password))
	{
		return -1;
	}
	if(etcdh__post(h, "/v3/auth/role/add", etcdh__pair("name", user, NULL, NULL)))
	{
		return -1;
	}
	k = etcdh__b64enc((const unsigned char *) prefix, strlen(prefix));
	e = etcdh__prefix_end_b64(prefix);
	grant = etcdh__pair("name", user, NULL, NULL);
	perm = grant ? cJSON_AddObjectToObject(grant, "perm") : NULL;
	if(k && e && perm)
	{
		cJSON_AddStringToObject(perm, "permType", "READWRITE");
		cJSON_AddStringToObject(perm, "key", k);
		cJSON_AddStringToObject(perm, "range_end", e);
		rc = etcdh__post(h, "/v3/auth/role/grant", grant);
	}
	else
	{
		cJSON_Delete(grant);
	}
	free(k);
	free(e);
	if(rc ||
		etcdh__post(h, "/v3/auth/user/add", etcdh__pair("name", user, "password", password)) ||
		etcdh__post(h, "/v3/auth/user/grant", etcdh__pair("user", user, "role", user)))
	{
		return -1;
	}
	return 0;
}

int
etcdh_metrics(etcdh *h, char **text)
{
	long status = etcdh__http(h->base, "/metrics", NULL, ETCDH_HTTP_TIMEOUT_MS, NULL, text);

	if(status != 200 || !*text)
	{
		free(*text);
		*text = NULL;
		return -1;
	}
	return 0;
}

/* Does the label block [lb, le) hold every "k=\"v\"" of the comma list? */
static int
etcdh__labels_match(const char *lb, const char *le, const char *labels)
{
	char want[256];
	const char *p = labels, *comma;
	size_t len;
	char *block;
	int ok = 1;

	if(!labels || !*labels)
	{
		return 1;
	}
	block = strndup(lb, (size_t) (le - lb));
	if(!block)
	{
		return 0;
	}
	while(ok && p && *p)
	{
		/* split on commas that are outside quotes */
		comma = p;
		{
			int inq = 0;

			while(*comma && (inq || *comma != ','))
			{
				if(*comma == '"')
				{
					inq = !inq;
				}
				comma++;
			}
		}
		len = (size_t) (comma - p);
		if(len >= sizeof(want))
		{
			len = sizeof(want) - 1;
		}
		memcpy(want, p, len);
		want[len] = '\0';
		if(!strstr(block, want))
		{
			ok = 0;
		}
		p = *comma ? comma + 1 : NULL;
	}
	free(block);
	return ok;
}

double
etcdh_metric(const char *text, const char *name, const char *labels)
{
	const char *line = text, *next, *p, *lb, *le;
	size_t nlen = strlen(name);
	double sum = 0;

	for(; line && *line; line = next)
	{
		next = strchr(line, '\n');
		next = next ? next + 1 : NULL;
		if(*line == '#' || strncmp(line, name, nlen) != 0)
		{
			continue;
		}
		p = line + nlen;
		if(*p == '{')
		{
			lb = p + 1;
			le = strchr(lb, '}');
			if(!le || (next && le > next))
			{
				continue;
			}
			if(!etcdh__labels_match(lb, le, labels))
			{
				continue;
			}
			p = le + 1;
		}
		else if(*p != ' ')
		{
			continue;
		}
		else if(labels && *labels)
		{
			continue;
		}
		sum += strtod(p, NULL);
	}
	return sum;
}
