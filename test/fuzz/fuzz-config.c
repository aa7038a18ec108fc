/*
 * fuzz-config.c: libFuzzer target for the configuration parsers.
 *
 * The input is parsed as a whole INI file through config_load_buffer
 * (no file I/O), then each line of it is fed to the pure value parsers
 * and to config_set, so the line reader, the inih glue and every value
 * type see hostile bytes. A config file is operator input, but rescue
 * reads the primary's over NFS: it must never crash us.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "error.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Bounds the per-line work; longer lines are cut. */
#define FUZZ_LINE_MAX 512

static void
fuzz_values(const char *s)
{
	static const char *const sections[] = { "primary", "standby" };
	struct config cfg;
	struct config_addr addr;
	const char *const *keys;
	char err[CONFIG_ERR_MAX], esc[4 * FUZZ_LINE_MAX + 8];
	uint64_t v;
	unsigned u;
	size_t i, j;

	config_parse_duration(s, &v);
	config_parse_size(s, &v);
	config_parse_uint(s, 1, 65535, &u);
	memset(&addr, 0, sizeof addr);
	if (config_parse_addr(s, &addr) == 0 && addr.len == 0)
		abort();	/* a parsed address always has a length */
	log_escape(s, strlen(s), esc, sizeof esc);
	log_escape(s, strlen(s), esc, 7);

	config_init(&cfg);
	for (i = 0; i < sizeof sections / sizeof sections[0]; i++) {
		keys = config_section_keys(sections[i]);
		for (j = 0; keys != NULL && keys[j] != NULL; j++)
			config_set(&cfg, sections[i], keys[j], s, err,
			    sizeof err);
		config_check(&cfg, sections[i], err, sizeof err);
	}
	config_release(&cfg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg;
	char err[CONFIG_ERR_MAX], line[FUZZ_LINE_MAX];
	const char *p, *end, *nl;
	size_t len;

	config_init(&cfg);
	if (config_load_buffer(&cfg, "fuzz", (const char *)data, size, err,
	    sizeof err) == 0) {
		config_check(&cfg, "primary", err, sizeof err);
		config_check(&cfg, "standby", err, sizeof err);
	} else if (memchr(err, '\0', sizeof err) == NULL)
		abort();	/* messages are always terminated */
	config_release(&cfg);

	p = (const char *)data;
	end = p + size;
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		if (len > sizeof line - 1)
			len = sizeof line - 1;
		memcpy(line, p, len);
		line[len] = '\0';
		fuzz_values(line);
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	return 0;
}
