/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cluster__escape(): every byte value, the unambiguity of the result and
 * every output size around the cut (issue 9, defect 11).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* The rule, written out independently of the implementation. */
static size_t
expect_unit(unsigned char ch, char unit[5])
{
	if(ch >= 0x20 && ch <= 0x7e && ch != '\\')
	{
		unit[0] = (char) ch;
		unit[1] = 0;
		return 1;
	}
	snprintf(unit, 5, "\\x%02x", ch);
	return 4;
}

static int
lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* Decode an escaping back to bytes; returns the length, or -1 if the text
 * is not a valid escaping (so each output has exactly one reading). */
static long
unescape(const char *s, unsigned char *out)
{
	long n = 0;

	while(*s)
	{
		unsigned char ch = (unsigned char) *s;
		unsigned v;

		if(ch < 0x20 || ch > 0x7e)
		{
			return -1;
		}
		if(ch != '\\')
		{
			out[n++] = ch;
			s++;
			continue;
		}
		if(s[1] != 'x' || !lower_hex(s[2]) || !lower_hex(s[3]) || sscanf(s + 2, "%2x", &v) != 1)
		{
			return -1;
		}
		out[n++] = (unsigned char) v;
		s += 4;
	}
	return n;
}

static void
test_every_byte_alone(void **state)
{
	char out[16], unit[5];
	unsigned b;

	(void) state;
	for(b = 0; b < 256; b++)
	{
		char in = (char) b;

		expect_unit((unsigned char) b, unit);
		memset(out, '#', sizeof(out));
		assert_ptr_equal(cluster__escape(out, sizeof(out), &in, 1), out);
		assert_string_equal(out, unit);
		/* the exact size is enough; one less is a cut */
		assert_string_equal(cluster__escape(out, strlen(unit) + 1, &in, 1), unit);
		cluster__escape(out, strlen(unit), &in, 1);
		assert_string_equal(out, strlen(unit) == 1 ? "" : "...");
	}
}

static void
test_all_bytes_round_trip(void **state)
{
	unsigned char in[256], back[256];
	char out[CLUSTER__ESCAPE_SIZE(256)], want[CLUSTER__ESCAPE_SIZE(256)], unit[5];
	size_t i, off = 0;

	(void) state;
	want[0] = 0;
	for(i = 0; i < 256; i++)
	{
		in[i] = (unsigned char) i;
		off += expect_unit(in[i], unit);
		strcat(want, unit);
	}
	cluster__escape(out, sizeof(out), (const char *) in, sizeof(in));
	assert_string_equal(out, want);
	assert_int_equal(strlen(out), off);
	/* 95 printable bytes less the backslash stand for themselves */
	assert_int_equal(off, 94 + 162 * 4);
	assert_int_equal(unescape(out, back), 256);
	assert_memory_equal(back, in, 256);
	/* what a forger would try: a literal "\x0a" comes out differently
	 * from a real newline */
	assert_string_equal(cluster__escape(out, sizeof(out), "a\\x0a", 5), "a\\x5cx0a");
	assert_string_equal(cluster__escape(out, sizeof(out), "a\n", 2), "a\\x0a");
	/* embedded NUL and the explicit length */
	assert_string_equal(cluster__escape(out, sizeof(out), "a\0b", 3), "a\\x00b");
	assert_string_equal(cluster__escape(out, sizeof(out), "abc", 0), "");
	assert_string_equal(cluster__escape(out, sizeof(out), NULL, 5), "(null)");
}

/* Every output size from 0 to past the full length, for inputs mixing
 * one-byte and four-byte units: NUL-terminated within the size, the full
 * text when it fits, else the longest whole-unit prefix that leaves room
 * for "..." followed by "..." (cut to fit when even that does not). */
static void
test_truncation_edges(void **state)
{
	static const char *inputs[] = {
		"abcdefgh",
		"\n\n\n\n",
		"a\nb\x1b"
		"c\xff"
		"d",
		"\\\\\\",
		"x\nforged",
		"\x80",
	};
	char full[64], out[80], unit[5];
	size_t k, sz;

	(void) state;
	for(k = 0; k < sizeof(inputs) / sizeof(inputs[0]); k++)
	{
		const char *in = inputs[k];
		size_t len = strlen(in), flen;

		cluster__escape(full, sizeof(full), in, len);
		flen = strlen(full);
		assert_true(flen < sizeof(full) - 1);
		/* nothing is written with no room at all */
		out[0] = '#';
		cluster__escape(out, 0, in, len);
		assert_int_equal(out[0], '#');
		for(sz = 1; sz <= flen + 3; sz++)
		{
			size_t olen, plen = 0, i;

			memset(out, '#', sizeof(out));
			assert_ptr_equal(cluster__escape(out, sz, in, len), out);
			olen = strlen(out);
			assert_true(olen < sz);
			assert_int_equal(out[sz], '#'); /* nothing past outsz */
			if(sz > flen)
			{
				assert_string_equal(out, full);
				continue;
			}
			/* the longest prefix of whole units p with p + 3 < sz */
			for(i = 0; i < len; i++)
			{
				size_t u = expect_unit((unsigned char) in[i], unit);

				if(plen + u + 3 >= sz)
				{
					break;
				}
				plen += u;
			}
			assert_memory_equal(out, full, plen);
			if(sz >= 4)
			{
				assert_int_equal(olen, plen + 3);
				assert_string_equal(out + plen, "...");
			}
			else
			{
				assert_int_equal(plen, 0);
				assert_int_equal(olen, sz - 1);
				assert_memory_equal(out, "...", olen);
			}
		}
	}
}

/* A registry URI in a message never shows a password. */
static void
test_uri_masks_user_info(void **state)
{
	char out[CLUSTER__ESCAPE_SIZE(200)];
	char longer[400];

	(void) state;
	assert_string_equal(cluster__escape_uri(out, "http://user:s3cret@h:1/"), "http://***@h:1/");
	assert_string_equal(cluster__escape_uri(out, "http://a:1/,https://u:p@b:2,etcd2+http://x@c:3"),
		"http://a:1/,https://***@b:2,etcd2+http://***@c:3");
	/* an '@' in the path is not user information */
	assert_string_equal(cluster__escape_uri(out, "http://h:1/p@q"), "http://h:1/p@q");
	assert_string_equal(cluster__escape_uri(out, "ftp://\n@x"), "ftp://***@x");
	assert_string_equal(cluster__escape_uri(out, "http://\x1b[2J"), "http://\\x1b[2J");
	assert_string_equal(cluster__escape_uri(out, NULL), "(null)");
	/* longer than 200 bytes: the first 200, masked, then escaped */
	memset(longer, 'a', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = 0;
	memcpy(longer, "http://pw@", 10);
	assert_int_equal(strlen(cluster__escape_uri(out, longer)), 200);
	assert_null(strstr(out, "pw"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_byte_alone),
		cmocka_unit_test(test_all_bytes_round_trip),
		cmocka_unit_test(test_truncation_edges),
		cmocka_unit_test(test_uri_masks_user_info),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
