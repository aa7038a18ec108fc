/*
 * cmd-keygen.c: asyncrep keygen DIR: a key and a self-signed certificate
 * for TLS, for operators without a CA; prints the key's pin, the value
 * the peers list in tls_trust.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "error.h"
#include "log.h"
#include "tls.h"

static int
cmd_keygen_exec(struct cmd_ctx *ctx)
{
	char pin[PIN_TEXT_LEN + 1], err[CONFIG_ERR_MAX + 512], q[256];
	int r;

	if (ctx->argc != 1) {
		log_error("keygen: give one directory (asyncrep keygen DIR)");
		return -AR_EUSAGE;
	}
	r = tls_keygen(ctx->argv[0], pin, err, sizeof(err));
	if (r != 0) {
		log_error("%s", err);
		return r;
	}
	log_escape(ctx->argv[0], strlen(ctx->argv[0]), q, sizeof(q));
	log_info("keygen: wrote %s/key.pem (mode 0600) and %s/cert.pem; "
	    "the pin below goes into the peers' tls_trust", q, q);
	printf("%s\n", pin);
	return fflush(stdout) == 0 ? 0 : -AR_EIO;
}

static const struct cmd_option cmd_keygen_options[] = {
	{ NULL, 0, 0, NULL, NULL },
};

const struct cmd_entry cmd_keygen_entry = {
	.name = "keygen",
	.section = NULL,
	.usage = "DIR",
	.help = "make a TLS key and self-signed certificate in DIR, print "
	    "its pin",
	.options = cmd_keygen_options,
	.exec = cmd_keygen_exec,
};
