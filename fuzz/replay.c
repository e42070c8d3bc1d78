/*
 * Runs a libFuzzer harness over files without libFuzzer: every seed and
 * every input that once crashed it (fuzz/corpus/NAME, fuzz/regress/NAME)
 * is replayed by `make check`, under the sanitizers in those builds.
 *   replay_NAME [DIR...]    (default: the directories built in, FUZZ_DIRS)
 */
#include "config.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int	LLVMFuzzerInitialize(int *argc, char ***argv);
int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Harnesses without an initializer get this one. */
__attribute__((weak)) int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static int
replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long len;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0) {
		perror(path);
		if (f != NULL)
			fclose(f);
		return -1;
	}
	rewind(f);
	buf = malloc((size_t)len + 1);
	if (buf == NULL || fread(buf, 1, (size_t)len, f) != (size_t)len) {
		perror(path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)len);
	free(buf);
	return 0;
}

static int
replay_dir(const char *dir, int *n)
{
	struct dirent *e;
	int failed = 0;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return 0;	/* no past crashes yet, say */
	while ((e = readdir(d)) != NULL) {
		char path[4096];

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		failed |= replay_file(path) != 0;
		(*n)++;
	}
	closedir(d);
	return failed;
}

int
main(int argc, char **argv)
{
	int n = 0, failed = 0;

	LLVMFuzzerInitialize(&argc, &argv);
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			failed |= replay_dir(argv[i], &n);
	} else {
#ifdef FUZZ_DIRS
		char *dirs = strdup(FUZZ_DIRS), *save = NULL;

		for (char *d = strtok_r(dirs, ":", &save); d != NULL;
		    d = strtok_r(NULL, ":", &save))
			failed |= replay_dir(d, &n);
		free(dirs);
#endif
	}
	printf("replayed %d inputs\n", n);
	return failed || n == 0;
}
