/*
 * Tokens (dlmd's client and admin tokens, dlmctl's) come from files, never
 * from a command line where ps(1) would show them: the file's first line.
 */
#ifndef DLM_TOKENFILE_H
#define DLM_TOKENFILE_H

#include <stddef.h>

/*
 * Read the first line of path into a new string. Returns 0, or -1 with
 * *why saying what is wrong (a static string).
 */
int	dlm_read_token_file(const char *path, char **token, const char **why);

/*
 * dlmd's --tokens-file: named tokens, one "NAME SECRET" a line ('#'
 * comments and blank lines allowed). A client that gives SECRET in hello
 * is the identity token:NAME.
 */
#define DLM_TOKEN_NAME_MAX	64
#define DLM_TOKENS_MAX		10000
struct dlm_named_token {
	char	*name;
	char	*secret;
};
/*
 * Read path; returns 0 with the tokens, or -1 with err naming the line
 * (never quoting a secret).
 */
int	dlm_read_named_tokens(const char *path, struct dlm_named_token **,
	    int *n, char *err, size_t errlen);
void	dlm_named_tokens_free(struct dlm_named_token *, int n);

#endif
