#include <stddef.h>

#include "error.h"

static const char *const messages[AR__MAX] = {
	[AR_OK] = "success",
	[AR_EUSAGE] = "bad usage",
	[AR_ECONFIG] = "bad configuration",
	[AR_EPARTIAL] = "partial transfer",
	[AR_EUNREACH] = "primary unreachable",
	[AR_EAUTH] = "authentication refused",
	[AR_EPROTO] = "protocol error",
	[AR_EIO] = "local i/o error",
	[AR_ENOMEM] = "out of memory or limit exceeded",
	[AR_EBIND] = "cannot listen",
	[AR_EVERSION] = "unsupported protocol version",
	[AR_ECHANGED] = "file changed while being sent",
	[AR_EFENCED] = "generation fenced by a rescue",
	[AR_ESTATE] = "local state unusable",
	[AR_EINTERNAL] = "internal error",
	[AR_ESIGNAL] = "interrupted by a signal",
	[AR_ENOSTANDBY] = "no standby connected in time",
	[AR_ESTORAGE] = "the primary's storage is unreadable or hung",
	[AR_ERESCUE_PARTIAL] = "rescue incomplete: some standby not completed",
	[AR_EDIFFER] = "the standby differs from the primary",
	[AR_ESOURCE] = "data_dir is not the tree this spool served",
	[AR_EMAXDELETE] = "more deletions than max_delete allows",
};

const char *
ar_strerror(int err)
{
	if (err < 0)
		err = -err;
	if (err >= AR__MAX || messages[err] == NULL)
		return "unknown error";
	return messages[err];
}
