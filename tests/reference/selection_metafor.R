#!/usr/bin/env Rscript
## Reference values for bayeskit's publication-bias models, computed with metafor.
##
## Data: dat.hackshaw1998 (metadat): 37 studies of lung cancer in women who never
## smoked, exposed to their spouse's smoking (environmental tobacco smoke), as log odds
## ratios back-calculated from the reported odds ratios and 95% CIs. Source: Hackshaw
## AK, Law MR, Wald NJ (1997). The accumulated evidence on lung cancer and environmental
## tobacco smoke. BMJ 315:980-988; Hackshaw AK (1998). Lung cancer and passive smoking.
## Stat Methods Med Res 7:119-136. It is the example of metafor's selmodel help page.
##
## Writes, next to this script:
##   hackshaw1998.csv        the data rows (study, author, year, design, yi, vi, sei)
##   selection_metafor.json  the estimates below, with the software versions
##
## Estimates:
##   random effects (ML and REML)         rma(yi, vi)
##   step-function selection model (ML)   selmodel(rma(yi, vi, method = "ML"),
##                                                type = "stepfun", steps = 0.025)
##     (bayeskit's default cutpoint; metafor refuses steps = c(0.025, 0.05, 0.5) on
##      these data: an interval holds no p-value)
##   PET   (REML)                         rma(yi, vi, mods = ~ sqrt(vi))
##   PEESE (REML)                         rma(yi, vi, mods = ~ vi)
##
## Usage: Rscript tests/reference/selection_metafor.R  (from anywhere). R is needed only
## to regenerate the files (Debian 12: r-base-core r-cran-metafor r-cran-metadat
## r-cran-jsonlite); no test runs R.

suppressPackageStartupMessages({
  library(metafor)
  library(metadat)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = FALSE)
file_arg <- sub("^--file=", "", args[grep("^--file=", args)])
outdir <- if (length(file_arg) == 1L) dirname(normalizePath(file_arg)) else getwd()

dat <- dat.hackshaw1998
dat$sei <- sqrt(dat$vi)
rows <- data.frame(
  study = sprintf("%s %d", dat$author, dat$year), author = dat$author, year = dat$year,
  design = dat$design, yi = dat$yi, vi = dat$vi, sei = dat$sei, measure = "OR"
)
stopifnot(nrow(rows) == 37, !anyDuplicated(rows$study))
write.csv(rows, file.path(outdir, "hackshaw1998.csv"), row.names = FALSE)

coefs <- function(fit, term = "intrcpt") {
  i <- which(rownames(fit$beta) == term)
  list(estimate = fit$beta[i, 1], se = fit$se[i], ci_lb = fit$ci.lb[i], ci_ub = fit$ci.ub[i],
       tau = sqrt(fit$tau2))
}

re_ml <- rma(yi, vi, data = dat, method = "ML")
re_reml <- rma(yi, vi, data = dat)
sel <- selmodel(re_ml, type = "stepfun", steps = 0.025)
pet <- rma(yi, vi, mods = ~ sqrt(vi), data = dat)
peese <- rma(yi, vi, mods = ~ vi, data = dat)
p <- pnorm(dat$yi / dat$sei, lower.tail = FALSE)

out <- list(
  data = "hackshaw1998.csv",
  software = list(R = R.version.string, metafor = as.character(packageVersion("metafor")),
                  metadat = as.character(packageVersion("metadat"))),
  k = nrow(dat),
  one_sided_p_counts = list(`p <= 0.025` = sum(p <= 0.025), `0.025 < p <= 1` = sum(p > 0.025)),
  random_effects_ml = coefs(re_ml),
  random_effects_reml = coefs(re_reml),
  selection_stepfun_0.025 = c(coefs(sel), list(
    omega = unname(sel$delta[2]), omega_se = unname(sel$se.delta[2]),
    lrt_selection_p = sel$LRTp)),
  pet = c(coefs(pet), list(slope = pet$beta[2, 1], slope_se = pet$se[2])),
  peese = c(coefs(peese), list(slope = peese$beta[2, 1], slope_se = peese$se[2]))
)
write_json(out, file.path(outdir, "selection_metafor.json"), auto_unbox = TRUE, digits = NA,
           pretty = TRUE)
cat(toJSON(out, auto_unbox = TRUE, digits = 6, pretty = TRUE), "\n")
