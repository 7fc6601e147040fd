#!/usr/bin/env Rscript
## Independent references for bayeskit's normal-multilevel family.
##
## Usage (from the repository root):
##   Rscript tests/reference/multilevel_brms.R
## Writes, next to this script:
##   konstantopoulos2011.csv  the 56 effects of the three-level example data
##   multilevel_brms.json     brms posterior summaries and metafor::rma.mv REML
##
## Data: metadat::dat.konstantopoulos2011 (Konstantopoulos S. 2011, "Fixed
## effects and variance components estimation in three-level meta-analysis",
## Research Synthesis Methods 2:61-76): 56 standardized mean differences
## (school calendar modification vs traditional calendar) from 56 schools in
## 11 districts.  district = study level, school = effect-size level.
##
## Model (the bayeskit test uses the same priors):
##   yi_ds ~ N(theta_ds, vi_ds),  theta_ds = mu + u_d + v_ds,
##   u_d ~ N(0, tau_district^2), v_ds ~ N(0, tau_school^2),
##   mu ~ Normal(0, 1), tau_district ~ HalfNormal(0.5), tau_school ~ HalfNormal(0.5).
##
## Requires R with brms, rstan, metafor, metadat, jsonlite (Debian packages
## r-cran-*).  R is needed only to REGENERATE these files; the outputs are
## committed and nothing in the Python package or its tests depends on R.

suppressPackageStartupMessages({
  library(brms)
  library(metafor)
  library(metadat)
  library(jsonlite)
})

## Debian's r-cran-bh ships the Boost headers under /usr/include only.
rstan::rstan_options(boost_lib = "/usr/include")

args <- commandArgs(trailingOnly = FALSE)
file_arg <- sub("^--file=", "", args[grep("^--file=", args)])
out_dir <- if (length(file_arg)) dirname(normalizePath(file_arg)) else "tests/reference"

dat <- metadat::dat.konstantopoulos2011
dat <- data.frame(district = dat$district, school = dat$school,
                  study = dat$study, year = dat$year,
                  yi = as.numeric(dat$yi), vi = as.numeric(dat$vi))
dat$sei <- sqrt(dat$vi)
write.csv(dat[, c("district", "school", "study", "year", "yi", "vi")],
          file.path(out_dir, "konstantopoulos2011.csv"), row.names = FALSE)

## ---- metafor: REML and ML point estimates (flat-prior sanity check) ---------
reml <- rma.mv(yi, vi, random = ~ 1 | district / school, data = dat, method = "REML")
ml <- rma.mv(yi, vi, random = ~ 1 | district / school, data = dat, method = "ML")
mv_row <- function(fit) list(
  mu = unname(coef(fit)[1]), se_mu = unname(fit$se),
  tau_district = sqrt(fit$sigma2[1]), tau_school = sqrt(fit$sigma2[2]),
  sigma2_district = fit$sigma2[1], sigma2_school = fit$sigma2[2],
  logLik = as.numeric(logLik(fit)))

## ---- brms: the Bayesian reference ------------------------------------------
t0 <- Sys.time()
priors <- c(prior(normal(0, 1), class = Intercept),
            prior(normal(0, 0.5), class = sd))  # sd is bounded at 0: half-normal
fit <- brm(yi | se(sei) ~ 1 + (1 | district / school), data = dat,
           prior = priors, chains = 4, cores = 2, iter = 11000, warmup = 1000,
           control = list(adapt_delta = 0.99, max_treedepth = 12),
           seed = 20111, refresh = 0, silent = 2)
elapsed <- as.numeric(difftime(Sys.time(), t0, units = "secs"))

dr <- posterior::as_draws_df(fit)
dr <- posterior::subset_draws(dr, variable = c("b_Intercept", "sd_district__Intercept",
                                               "sd_district:school__Intercept"))
summ <- posterior::summarise_draws(dr, "mean", "sd", "median",
                                   ~ quantile(.x, c(0.025, 0.975)),
                                   "mcse_mean", "mcse_sd", "ess_bulk", "ess_tail", "rhat")
names_map <- c(b_Intercept = "mu", sd_district__Intercept = "tau_district",
               "sd_district:school__Intercept" = "tau_school")
post <- list()
for (i in seq_len(nrow(summ))) {
  r <- summ[i, ]
  post[[names_map[[r$variable]]]] <- list(
    mean = r$mean, sd = r$sd, median = r$median,
    q2.5 = r[["2.5%"]], q97.5 = r[["97.5%"]],
    mcse_mean = r$mcse_mean, mcse_sd = r$mcse_sd,
    ess_bulk = r$ess_bulk, ess_tail = r$ess_tail, rhat = r$rhat)
}
np <- nuts_params(fit)
divergences <- sum(np$Value[np$Parameter == "divergent__"])

out <- list(
  data = "metadat::dat.konstantopoulos2011 (Konstantopoulos 2011, Res Synth Methods 2:61-76)",
  n_effects = nrow(dat), n_districts = length(unique(dat$district)),
  priors = list(mu = "Normal(0, 1)", tau_district = "HalfNormal(0.5)",
                tau_school = "HalfNormal(0.5)"),
  brms = list(formula = "yi | se(sei) ~ 1 + (1 | district / school)",
              chains = 4, iter = 11000, warmup = 1000, draws = 40000,
              adapt_delta = 0.99, seed = 20111, divergences = divergences,
              seconds_sampling_and_compile = elapsed, posterior = post),
  rma_mv_reml = mv_row(reml), rma_mv_ml = mv_row(ml),
  versions = list(R = R.version.string, brms = as.character(packageVersion("brms")),
                  rstan = as.character(packageVersion("rstan")),
                  metafor = as.character(packageVersion("metafor")),
                  metadat = as.character(packageVersion("metadat"))))
write_json(out, file.path(out_dir, "multilevel_brms.json"), auto_unbox = TRUE,
           digits = 8, pretty = TRUE)
print(summ)
print(reml)
