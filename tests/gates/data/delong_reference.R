# Reference values for tests/gates/test_delong_reference.py, computed with R's pROC:
#   Robin X, Turck N, Hainard A, et al. "pROC: an open-source package for R and S+ to analyze and
#   compare ROC curves". BMC Bioinformatics 2011;12:77.
# Used: pROC 1.18.0 (Debian package r-cran-proc) on R 4.2.2.
#
#   Rscript tests/gates/data/delong_reference.R tests/gates/data/delong_data.csv
#
# prints one Python dict per data set, to paste into the test. The data (delong_data.csv) was
# written by make_delong_data.py; scores have 4 decimals, so R and Python read the same doubles.
#
# Both curves are built with levels = c(0, 1) (0 = controls, 1 = cases) and direction = "<"
# (cases score higher), so pROC never flips a curve. roc.test gets the candidate first, so its
# difference, Z and interval are candidate minus baseline, as mloop's delong_test reports them.

suppressPackageStartupMessages(library(pROC))

args <- commandArgs(trailingOnly = TRUE)
path <- if (length(args) >= 1) args[1] else "tests/gates/data/delong_data.csv"
data <- read.csv(path, colClasses = c("character", "integer", "numeric", "numeric"))

g <- function(x) sprintf("%.15g", x)

for (name in unique(data$set)) {
  d <- data[data$set == name, ]
  roc_base <- roc(d$y, d$baseline, levels = c(0, 1), direction = "<", quiet = TRUE)
  roc_cand <- roc(d$y, d$candidate, levels = c(0, 1), direction = "<", quiet = TRUE)
  test <- roc.test(roc_cand, roc_base, method = "delong", paired = TRUE,
                   alternative = "two.sided", conf.level = 0.95)
  ci_base <- ci.auc(roc_base, method = "delong", conf.level = 0.95)
  ci_cand <- ci.auc(roc_cand, method = "delong", conf.level = 0.95)
  stopifnot(isTRUE(all.equal(attr(test$conf.int, "conf.level"), 0.95)))
  cat(sprintf('    "%s": {\n', name))
  cat(sprintf('        "auc_baseline": %s,\n', g(as.numeric(auc(roc_base)))))
  cat(sprintf('        "auc_candidate": %s,\n', g(as.numeric(auc(roc_cand)))))
  cat(sprintf('        "var_baseline": %s,\n', g(var(roc_base, method = "delong"))))
  cat(sprintf('        "var_candidate": %s,\n', g(var(roc_cand, method = "delong"))))
  cat(sprintf('        "cov": %s,\n', g(cov(roc_base, roc_cand, method = "delong"))))
  cat(sprintf('        "z": %s,\n', g(unname(test$statistic))))
  cat(sprintf('        "p_value": %s,\n', g(test$p.value)))
  cat(sprintf('        "diff_low": %s,\n', g(test$conf.int[1])))
  cat(sprintf('        "diff_high": %s,\n', g(test$conf.int[2])))
  cat(sprintf('        "ci_baseline": (%s, %s),\n', g(ci_base[1]), g(ci_base[3])))
  cat(sprintf('        "ci_candidate": (%s, %s),\n', g(ci_cand[1]), g(ci_cand[3])))
  cat("    },\n")
}
