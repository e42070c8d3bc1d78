/*
 * Tokens (dlmd's client and admin tokens, dlmctl's) come from files, never
 * from a command line where ps(1) would show them: the file's first line.
 */
#ifndef DLM_TOKENFILE_H
#define DLM_TOKENFILE_H

/*
 * Read the first line of path into a new string. Returns 0, or -1 with
 * *why saying what is wrong (a static string).
 */
int	dlm_read_token_file(const char *path, char **token, const char **why);

#endif
